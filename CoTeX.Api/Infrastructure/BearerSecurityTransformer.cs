using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace CoTeX.Api.Infrastructure;

/// <summary>Declares the Supabase bearer token in the OpenAPI document, so clients and the Scalar UI can send it.</summary>
internal sealed class BearerSecurityTransformer : IOpenApiDocumentTransformer
{
    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes["Bearer"] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "A Supabase access token. Locally: eng/mint-token.sh.",
        };
        document.Info.Title = "CoTeX API";
        return Task.CompletedTask;
    }
}
