"""The AWS query protocol at the S3 endpoint: ``POST /`` with a form body naming an
``Action`` — IAM's API (:mod:`gateway.query.iam`) and STS's ``AssumeRoleWithWebIdentity``
(:mod:`gateway.query.sts`), registered on one dispatcher.

:mod:`gateway.query.endpoint` recognises such a request, reads and authenticates it;
:mod:`gateway.query.dispatch` finds the action's handler by name; handlers return the
``<ActionResult>`` element, which :mod:`gateway.query.xml` wraps in the response document
(or a whole reply of their own); errors are rendered in the query protocol's
``ErrorResponse`` shape (:mod:`gateway.query.errors`).
"""
