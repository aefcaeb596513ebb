using System.Security.Cryptography;
using System.Xml.Linq;
using CoTeX.ServiceDefaults;
using Dapper;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CoTeX.Shared.DataProtection;

/// <summary>
/// Keeps the ASP.NET Data Protection key ring in Postgres (<c>data_protection_keys</c>), so every Api replica
/// encrypts and decrypts webhook secrets with the same keys, and the keys outlive any one container. Keys are stored
/// with their secrets encrypted under the key-encryption key (<see cref="KeyRingEncryptor"/>, configured as the
/// ring's XML encryptor). Reading the ring also re-seals what is not yet under the current key-encryption key: rows
/// written before keys were encrypted, and rows under a previous key during a rotation.
/// Nothing is written to a ring this service cannot read in full: with another key-encryption key than the ring's, Data
/// Protection finds no usable key and would create one, sealed under the wrong key, that every other replica then
/// fails to read. <see cref="StoreElement"/> refuses instead (a 503 for whatever needed the new key), and nothing is
/// re-sealed.
/// The framework reads the ring once and caches it, so the synchronous calls here are rare.
/// </summary>
public sealed partial class PostgresXmlRepository(NpgsqlDataSource dataSource, KeyEncryptionKeys keys,
    ILogger<PostgresXmlRepository> logger) : IXmlRepository
{
    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";
    private static readonly XName RequiresEncryption = DataProtection + "requiresEncryption";
    private static readonly XName EncryptedSecret = DataProtection + "encryptedSecret";

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var connection = dataSource.OpenConnection();
        var rows = connection.Query<(string FriendlyName, string Xml)>(
                "select friendly_name, xml from data_protection_keys order by created_at")
            .Select(row => (row.FriendlyName, Element: XElement.Parse(row.Xml))).ToList();
        // Re-sealing writes to the ring, so it is done only by a service that can read all of it: one with another
        // key-encryption key would seal a key written in the clear under a key the other replicas do not have.
        var mayWrite = rows.All(row => CanRead(row.Element));
        foreach (var (friendlyName, element) in rows)
        {
            if (mayWrite && Reseal(element))
            {
                connection.Execute("update data_protection_keys set xml = @xml where friendly_name = @friendlyName",
                    new { friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
                LogResealed(logger, friendlyName, keys.CurrentId);
            }
        }
        return rows.Select(row => row.Element).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var connection = dataSource.OpenConnection();
        var unreadable = connection.Query<string>("select xml from data_protection_keys")
            .Count(xml => !CanRead(XElement.Parse(xml)));
        if (unreadable > 0)
        {
            LogRefused(logger, friendlyName, unreadable);
            throw new ServiceUnavailableException(
                "This service cannot read the key ring that protects secrets (its DataProtection:KeyEncryptionKey is not " +
                "the ring's; see /health), so it makes no new secret: nothing was stored. Retry later.");
        }
        connection.Execute(
            "insert into data_protection_keys (friendly_name, xml) values (@friendlyName, @xml) on conflict (friendly_name) do nothing",
            new { friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
    }

    /// <summary>Whether every sealed secret of the key element opens with this service's key-encryption keys.</summary>
    private bool CanRead(XElement key)
    {
        foreach (var sealedSecret in key.Descendants(KeyRingEncryptor.ElementName))
        {
            try
            {
                _ = KeyRingEncryptor.Open(sealedSecret, keys);
            }
            catch (Exception ex) when (ex is CryptographicException or FormatException)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Puts every secret of the key element under the current key-encryption key; whether anything changed.</summary>
    private bool Reseal(XElement key)
    {
        var changed = false;
        // Written unencrypted (Data Protection marks what needs encrypting): seal it as the framework would have.
        foreach (var plain in key.Descendants().Where(e => (bool?)e.Attribute(RequiresEncryption) == true).ToList())
        {
            plain.ReplaceWith(new XElement(EncryptedSecret,
                new XAttribute("decryptorType", typeof(KeyRingDecryptor).AssemblyQualifiedName!),
                KeyRingEncryptor.Seal(plain, keys.CurrentId, keys.Current)));
            changed = true;
        }
        // Sealed under a previous key-encryption key this service still has: seal it again under the current one.
        foreach (var sealedSecret in key.Descendants(KeyRingEncryptor.ElementName)
                     .Where(e => (string?)e.Attribute("kek") is { } id && id != keys.CurrentId && keys.Find(id) is not null)
                     .ToList())
        {
            sealedSecret.ReplaceWith(KeyRingEncryptor.Seal(KeyRingEncryptor.Open(sealedSecret, keys), keys.CurrentId, keys.Current));
            changed = true;
        }
        return changed;
    }

    [LoggerMessage(LogLevel.Error, "Data Protection key {FriendlyName} was not stored: {Unreadable} keys of the ring cannot be decrypted with this service's key-encryption keys, and a key sealed under them would be unreadable to the other replicas")]
    private static partial void LogRefused(ILogger logger, string friendlyName, int unreadable);

    [LoggerMessage(LogLevel.Information, "Data Protection key {FriendlyName} sealed under key-encryption key {KeyEncryptionKeyId}")]
    private static partial void LogResealed(ILogger logger, string friendlyName, string keyEncryptionKeyId);
}
