namespace CoTeX.ServiceDefaults;

/// <summary>
/// The service cannot do this now for a reason of its own (not the request's): answered 503 with Retry-After and
/// <see cref="Exception.Message"/> as the ProblemDetails detail, so it must be fit for the caller to read.
/// </summary>
public sealed class ServiceUnavailableException(string message, Exception? innerException = null)
    : Exception(message, innerException);
