"""The query protocol's XML: ``<ActionResponse>`` documents and ``<ErrorResponse>``.

A response is ``<{Action}Response xmlns="{namespace}">``, holding the handler's
``<{Action}Result>`` (when the action has one) and ``<ResponseMetadata><RequestId>``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from gateway.query.errors import QueryError

CONTENT_TYPE = "text/xml"


def result(action: str) -> etree._Element:
    """An empty ``<{action}Result>`` for a handler to fill."""
    return etree.Element(f"{action}Result")


def child(parent: etree._Element, tag: str, value: object | None = None) -> etree._Element:
    """Append ``<tag>value</tag>`` to ``parent`` (no text when ``value`` is None); booleans
    as ``true``/``false``, datetimes in ISO 8601 UTC."""
    element = etree.SubElement(parent, tag)
    if value is not None:
        element.text = _text(value)
    return element


def response_document(
    action: str, namespace: str, body: etree._Element | None, request_id: str
) -> bytes:
    """The ``<{action}Response>`` document around ``body`` (the action's result)."""
    root = etree.Element(f"{action}Response", nsmap={None: namespace})  # type: ignore[dict-item]
    if body is not None:
        root.append(body)
    metadata = etree.SubElement(root, "ResponseMetadata")
    etree.SubElement(metadata, "RequestId").text = request_id
    return _serialised(_in_namespace(root, namespace))


def error_document(error: QueryError, namespace: str, request_id: str) -> bytes:
    """``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``."""
    root = etree.Element("ErrorResponse", nsmap={None: namespace})  # type: ignore[dict-item]
    details = etree.SubElement(root, "Error")
    etree.SubElement(details, "Type").text = error.fault
    etree.SubElement(details, "Code").text = error.code
    etree.SubElement(details, "Message").text = error.message
    etree.SubElement(root, "RequestId").text = request_id
    return _serialised(_in_namespace(root, namespace))


def _in_namespace(root: etree._Element, namespace: str) -> etree._Element:
    for element in root.iter():
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{namespace}}}{element.tag}"
    return root


def _serialised(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)
