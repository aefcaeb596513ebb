targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment that can be used as part of naming resource convention, the name of the resource group for your application will use this name, prefixed with rg-')
param environmentName string

@minLength(1)
@description('The location used for all deployed resources')
param location string

@description('Id of the user or app to assign application roles')
param principalId string = ''

param cors_origins string = ''
param github_app_client_id string = ''
@secure()
param github_app_client_secret string = ''
param github_app_id string = ''
@secure()
param github_app_private_key string = ''
@secure()
param github_app_webhook_secret string = ''
@secure()
param jwt_secret string
@secure()
param key_encryption_key string
@metadata({azd: {
  type: 'generate'
  config: {length:22}
  }
})
@secure()
param postgres_password string
param public_base_url string = ''
@metadata({azd: {
  type: 'generate'
  config: {length:22,noSpecial:true}
  }
})
@secure()
param redis_password string
param stripe_cancel_url string = ''
param stripe_portal_return_url string = ''
param stripe_pro_price_id string = ''
@secure()
param stripe_secret_key string = ''
param stripe_success_url string = ''
@secure()
param stripe_webhook_secret string = ''
param supabase_issuer string = ''
param supabase_jwks_url string = ''

var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  scope: rg
  name: 'resources'
  params: {
    location: location
    tags: tags
    principalId: principalId
  }
}

output MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.MANAGED_IDENTITY_CLIENT_ID
output MANAGED_IDENTITY_NAME string = resources.outputs.MANAGED_IDENTITY_NAME
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.AZURE_LOG_ANALYTICS_WORKSPACE_NAME
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = resources.outputs.AZURE_CONTAINER_REGISTRY_ENDPOINT
output AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID string = resources.outputs.AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID
output AZURE_CONTAINER_REGISTRY_NAME string = resources.outputs.AZURE_CONTAINER_REGISTRY_NAME
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_NAME
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_ID
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN
output AZURE_CORS_ORIGINS string = cors_origins
output AZURE_GITHUB_APP_CLIENT_ID string = github_app_client_id
output AZURE_GITHUB_APP_ID string = github_app_id
output AZURE_PUBLIC_BASE_URL string = public_base_url
output AZURE_STRIPE_CANCEL_URL string = stripe_cancel_url
output AZURE_STRIPE_PORTAL_RETURN_URL string = stripe_portal_return_url
output AZURE_STRIPE_PRO_PRICE_ID string = stripe_pro_price_id
output AZURE_STRIPE_SUCCESS_URL string = stripe_success_url
output AZURE_SUPABASE_ISSUER string = supabase_issuer
output AZURE_SUPABASE_JWKS_URL string = supabase_jwks_url
