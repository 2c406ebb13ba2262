"""The one S3 error table.

Every rejection the gateway sends is an :class:`S3Error`: an S3 error code, looked up in
``ERRORS`` for its HTTP status and default message, rendered as S3's ``<Error>`` XML by
the middleware. Extra XML fields (``BucketName``, ``Key``, ``ArgumentName`` ...) travel in
``fields``. Translators and policy wrappers raise these too; nothing else may reach a client.
"""

from __future__ import annotations

from typing import Final

#: S3 error code -> (HTTP status, default message). Messages follow the AWS S3 API reference.
ERRORS: Final[dict[str, tuple[int, str]]] = {
    "AccessDenied": (403, "Access Denied"),
    # A CORS preflight (OPTIONS) that no rule of the bucket allows.
    "AccessForbidden": (
        403,
        "CORSResponse: This CORS request is not allowed. This is usually because the "
        "evalution of Origin, request method / Access-Control-Request-Method or "
        "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    ),
    "BadRequest": (400, "Bad Request"),
    "AccessControlListNotSupported": (400, "The bucket does not allow ACLs."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    # WebDAV's 507 (RFC 4918), not an AWS code: the storage is full. Not retried by clients.
    "InsufficientStorage": (
        507,
        "There is not enough free space in the gateway's storage to store this request.",
    ),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "InvalidChunkSizeError": (
        400,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
    ),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidLocationConstraint": (400, "The specified location constraint is not valid."),
    "InvalidEncryptionAlgorithmError": (
        400,
        "The encryption request you specified is not valid. The valid value is AES256.",
    ),
    # SSE-KMS with a key id the gateway's key ring does not hold (as KMS answers S3).
    "KMS.NotFoundException": (400, "Invalid keyId"),
    "ServerSideEncryptionConfigurationNotFoundError": (
        404,
        "The server side encryption configuration was not found",
    ),
    "InvalidObjectState": (403, "The operation is not valid for the current state of the object."),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found. The part might not have been "
        "uploaded, or the specified entity tag might not have matched the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "InvalidToken": (400, "The provided token is malformed or otherwise invalid."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema.",
    ),
    "MalformedTrailerError": (
        400,
        "The request contained trailing data that was not well-formed or did not conform to "
        "our published schema.",
    ),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "MalformedPolicy": (400, "Policies must be valid JSON and follow the policy grammar."),
    "MalformedACLError": (
        400,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema.",
    ),
    "MaxPostPreDataLengthExceededError": (
        400,
        "Your POST request fields preceding the upload file were too large.",
    ),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request was missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (
        404,
        "The specified multipart upload does not exist. The upload ID might be invalid, or the "
        "multipart upload might have been aborted or completed.",
    ),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NoSuchObjectLockConfiguration": (
        404,
        "The specified object does not have a ObjectLock configuration.",
    ),
    "ObjectLockConfigurationNotFoundError": (
        404,
        "Object Lock configuration does not exist for this bucket.",
    ),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist."),
    "NoSuchTagSet": (404, "The TagSet does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist."),
    "NoSuchPublicAccessBlockConfiguration": (
        404,
        "The public access block configuration was not found.",
    ),
    "OwnershipControlsNotFoundError": (404, "The bucket ownership controls were not found."),
    "InvalidBucketAclWithObjectOwnership": (
        400,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting.",
    ),
    "UnresolvableGrantByEmailAddress": (
        400,
        "The email address you provided does not match any account on record.",
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    # Not an AWS code: a PageWright site quota (bytes or artifacts) would be exceeded.
    "QuotaExceeded": (403, "The upload would exceed the site's storage quota."),
    "ConditionalRequestConflict": (
        409,
        "A conflicting operation occurred. If using PutObject you can retry the request.",
    ),
    "RequestHeaderSectionTooLarge": (
        400,
        "Your request header section exceeds the maximum allowed size.",
    ),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    "InvalidObjectName": (400, "The specified object name is not valid."),
    "UnexpectedContent": (400, "This request does not support content."),
    # PageWright artifact validation (policy.archive, policy.validation).
    "InvalidArchive": (400, "The artifact is not a valid, complete archive."),
    "UnsafeArchivePath": (
        400,
        "The archive holds a member with an absolute path or a '..' component.",
    ),
    "UnsafeArchiveLink": (400, "The archive holds a link that points outside the archive."),
    "ForbiddenArchiveMember": (
        400,
        "The archive holds a device file, a FIFO or another forbidden member type.",
    ),
    "ArchiveTooManyMembers": (400, "The archive holds more members than the site allows."),
    "ArchiveTooLarge": (400, "The archive expands to more bytes than the site allows."),
    "ArchiveCompressionRatio": (
        400,
        "The archive's compression ratio is above the site's limit.",
    ),
    "MissingRequiredMember": (400, "The archive lacks the member the site requires."),
    "InvalidArtifactKey": (
        400,
        "A key under builds/ ending in an archive extension must be builds/<build_id>.<ext>.",
    ),
}


class S3Error(Exception):
    """An S3 error response: ``code`` (a key of ``ERRORS``), a message and extra XML fields.

    ``headers`` are added to the HTTP response (e.g. ``Content-Range`` on InvalidRange).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> None:
        if code not in ERRORS:
            raise KeyError(f"unknown S3 error code {code!r}")
        self.code = code
        self.status, default = ERRORS[code]
        self.message = message or default
        self.fields = fields
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")


def not_implemented(operation: str, where: str = "this gateway") -> S3Error:
    """The 501 answer for an operation that ``where`` does not support."""
    return S3Error("NotImplemented", f"{operation} is not implemented by {where}.")
