using System.Xml.Linq;
using Dapper;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace CoTeX.Api.Infrastructure;

/// <summary>
/// Keeps the ASP.NET Data Protection key ring in Postgres (<c>data_protection_keys</c>), so every Api replica
/// encrypts and decrypts webhook secrets with the same keys, and the keys outlive any one container.
/// The framework reads the ring once and caches it, so the synchronous calls here are rare.
/// </summary>
public sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var connection = dataSource.OpenConnection();
        return connection.Query<string>("select xml from data_protection_keys order by created_at")
            .Select(XElement.Parse)
            .ToArray();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var connection = dataSource.OpenConnection();
        connection.Execute(
            "insert into data_protection_keys (friendly_name, xml) values (@friendlyName, @xml) on conflict (friendly_name) do nothing",
            new { friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
    }
}
