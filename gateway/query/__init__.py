"""The AWS query protocol at the S3 endpoint: ``POST /`` with a form body naming an
``Action`` (IAM's API today; STS's registers beside it).

:mod:`gateway.query.endpoint` recognises such a request, reads and authenticates it;
:mod:`gateway.query.dispatch` finds the action's handler by name; handlers (the IAM ones in
:mod:`gateway.query.iam`) return the ``<ActionResult>`` element, which
:mod:`gateway.query.xml` wraps in the response document; errors are rendered in the query
protocol's ``ErrorResponse`` shape (:mod:`gateway.query.errors`).
"""
