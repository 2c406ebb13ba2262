"""The AWS query protocol at the S3 endpoint: ``POST /`` form requests keyed by ``Action``
(STS's ``AssumeRoleWithWebIdentity`` in :mod:`gateway.query.sts`)."""
