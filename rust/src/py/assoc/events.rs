//! The events of the association machines as frozen Python classes, and the
//! requests a server's shell answers. Conversion only.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::values::{
    agreement, diagnostic, error_info, failure, outcome, result_name, PyAgreement, PyAttribute, PyErrorInfo, PyMethod,
    PyRequestFailure,
};
use crate::assoc::{ClientEvent, IncomingRequest, ServerEvent};

/// The association is open (client: after HLS pass 4; server: once f(StoC) verified).
#[pyclass(name = "Associated", module = "smmc_gateway._core", frozen)]
pub struct Associated {
    #[pyo3(get)]
    agreement: Py<PyAgreement>,
}

/// The association was refused: the AARE's result and diagnostic (client:
/// as received; server: as sent) and what else was learnt.
#[pyclass(name = "Refused", module = "smmc_gateway._core", frozen)]
pub struct Refused {
    #[pyo3(get)]
    result: i64,
    #[pyo3(get)]
    result_name: &'static str,
    #[pyo3(get)]
    diagnostic: Option<i64>,
    #[pyo3(get)]
    diagnostic_source: Option<&'static str>,
    #[pyo3(get)]
    diagnostic_name: Option<&'static str>,
    #[pyo3(get)]
    detail: String,
}

/// The client could not open the association (a malformed or inconsistent
/// AARE, a failed security check, no answer in time).
#[pyclass(name = "AssociationFailed", module = "smmc_gateway._core", frozen)]
pub struct AssociationFailed {
    #[pyo3(get)]
    error: Py<PyErrorInfo>,
}

/// The end of request `id`: its `outcome`, or its `failure`.
#[pyclass(name = "Response", module = "smmc_gateway._core", frozen)]
pub struct Response {
    #[pyo3(get)]
    id: u64,
    #[pyo3(get)]
    outcome: Option<Py<PyAny>>,
    #[pyo3(get)]
    failure: Option<Py<PyRequestFailure>>,
}

/// Request `id` got no answer within the response timeout (abandoned).
#[pyclass(name = "Timeout", module = "smmc_gateway._core", frozen)]
pub struct Timeout {
    #[pyo3(get)]
    id: u64,
}

/// A ciphered APDU waits for invocation counters: call `grant_counters`.
#[pyclass(name = "NeedCounters", module = "smmc_gateway._core", frozen)]
pub struct NeedCounters {}

/// The server refused request `id` with invocation-counter-error and expects
/// `expected` (unauthenticated; within the bound of the confirmed position).
#[pyclass(name = "CounterHint", module = "smmc_gateway._core", frozen)]
pub struct CounterHint {
    #[pyo3(get)]
    id: u64,
    #[pyo3(get)]
    expected: u32,
    #[pyo3(get)]
    confirmed_base: u32,
}

/// An answer to an invoke id we stopped waiting for was dropped.
#[pyclass(name = "LateAnswerDropped", module = "smmc_gateway._core", frozen)]
pub struct LateAnswerDropped {
    #[pyo3(get)]
    invoke_id: u8,
}

/// Something received was dropped or refused (it belongs to no request).
#[pyclass(name = "ProtocolError", module = "smmc_gateway._core", frozen)]
pub struct ProtocolError {
    #[pyo3(get)]
    error: Py<PyErrorInfo>,
}

/// A data-notification or event-notification received on the association.
#[pyclass(name = "Unsolicited", module = "smmc_gateway._core", frozen)]
pub struct Unsolicited {
    #[pyo3(get)]
    apdu: Py<PyBytes>,
}

/// The association is over (client: `confirmed` when the RLRE arrived;
/// server: always true).
#[pyclass(name = "Released", module = "smmc_gateway._core", frozen)]
pub struct Released {
    #[pyo3(get)]
    confirmed: bool,
}

/// A quirk of the meter was taken (`quirk`: its name; `detail`: what was found).
#[pyclass(name = "QuirkTaken", module = "smmc_gateway._core", frozen)]
pub struct QuirkTaken {
    #[pyo3(get)]
    quirk: &'static str,
    #[pyo3(get)]
    detail: String,
}

/// A complete request for the server's shell: answer it with `respond_*`.
#[pyclass(name = "Request", module = "smmc_gateway._core", frozen)]
pub struct Request {
    #[pyo3(get)]
    id: u64,
    #[pyo3(get)]
    request: Py<PyAny>,
}

/// GET of these attributes (one: normal; several: with-list).
#[pyclass(name = "GetRequest", module = "smmc_gateway._core", frozen)]
pub struct GetRequest {
    #[pyo3(get)]
    attributes: Py<PyTuple>,
}

/// SET: each attribute with its value (raw A-XDR, checked to parse).
#[pyclass(name = "SetRequest", module = "smmc_gateway._core", frozen)]
pub struct SetRequest {
    #[pyo3(get)]
    items: Py<PyTuple>,
}

/// ACTION: each method with its parameters (raw A-XDR) or None.
#[pyclass(name = "ActionRequest", module = "smmc_gateway._core", frozen)]
pub struct ActionRequest {
    #[pyo3(get)]
    items: Py<PyTuple>,
}

fn refused(detail: String, result: i64, d: Option<crate::apdu::Diagnostic>) -> Refused {
    let (diagnostic, diagnostic_source, diagnostic_name) = diagnostic(d);
    Refused { result, result_name: result_name(result), diagnostic, diagnostic_source, diagnostic_name, detail }
}

pub(super) fn client_event(py: Python<'_>, e: ClientEvent) -> PyResult<Py<PyAny>> {
    Ok(match e {
        ClientEvent::Associated(a) => Py::new(py, Associated { agreement: agreement(py, &a)? })?.into_any(),
        ClientEvent::Refused { result, diagnostic, detail } => {
            Py::new(py, refused(detail, result, diagnostic))?.into_any()
        }
        ClientEvent::AssociationFailed(e) => Py::new(py, AssociationFailed { error: error_info(py, &e)? })?.into_any(),
        ClientEvent::Response { id, result } => {
            let (outcome, failure) = match result {
                Ok(o) => (Some(outcome(py, o)?), None),
                Err(e) => (None, Some(failure(py, e)?)),
            };
            Py::new(py, Response { id, outcome, failure })?.into_any()
        }
        ClientEvent::Timeout { id } => Py::new(py, Timeout { id })?.into_any(),
        ClientEvent::NeedCounters => Py::new(py, NeedCounters {})?.into_any(),
        ClientEvent::CounterHint { id, expected, confirmed_base } => {
            Py::new(py, CounterHint { id, expected, confirmed_base })?.into_any()
        }
        ClientEvent::LateAnswerDropped { invoke_id } => Py::new(py, LateAnswerDropped { invoke_id })?.into_any(),
        ClientEvent::ProtocolError(e) => Py::new(py, ProtocolError { error: error_info(py, &e)? })?.into_any(),
        ClientEvent::Unsolicited(a) => Py::new(py, Unsolicited { apdu: PyBytes::new(py, &a).unbind() })?.into_any(),
        ClientEvent::Released { confirmed } => Py::new(py, Released { confirmed })?.into_any(),
        ClientEvent::Quirk(t) => Py::new(py, QuirkTaken { quirk: t.quirk, detail: t.detail })?.into_any(),
    })
}

fn request(py: Python<'_>, r: IncomingRequest) -> PyResult<Py<PyAny>> {
    Ok(match r {
        IncomingRequest::Get(items) => {
            let attrs: Vec<PyAttribute> = items.into_iter().map(|inner| PyAttribute { inner }).collect();
            Py::new(py, GetRequest { attributes: PyTuple::new(py, attrs)?.unbind() })?.into_any()
        }
        IncomingRequest::Set(items) => {
            let mut v = Vec::with_capacity(items.len());
            for (inner, value) in items {
                let a = Py::new(py, PyAttribute { inner })?;
                v.push(PyTuple::new(py, [a.into_any(), PyBytes::new(py, &value).into_any().unbind()])?);
            }
            Py::new(py, SetRequest { items: PyTuple::new(py, v)?.unbind() })?.into_any()
        }
        IncomingRequest::Action(items) => {
            let mut v = Vec::with_capacity(items.len());
            for (inner, params) in items {
                let m = Py::new(py, PyMethod { inner })?;
                let p = match params {
                    Some(p) => PyBytes::new(py, &p).into_any().unbind(),
                    None => py.None(),
                };
                v.push(PyTuple::new(py, [m.into_any(), p])?);
            }
            Py::new(py, ActionRequest { items: PyTuple::new(py, v)?.unbind() })?.into_any()
        }
    })
}

pub(super) fn server_event(py: Python<'_>, e: ServerEvent) -> PyResult<Py<PyAny>> {
    Ok(match e {
        ServerEvent::Associated(a) => Py::new(py, Associated { agreement: agreement(py, &a)? })?.into_any(),
        ServerEvent::Refused { result, diagnostic, why } => {
            Py::new(py, refused(why, result, Some(diagnostic)))?.into_any()
        }
        ServerEvent::Request { id, request: r } => Py::new(py, Request { id, request: request(py, r)? })?.into_any(),
        ServerEvent::NeedCounters => Py::new(py, NeedCounters {})?.into_any(),
        ServerEvent::ProtocolError(e) => Py::new(py, ProtocolError { error: error_info(py, &e)? })?.into_any(),
        ServerEvent::Released => Py::new(py, Released { confirmed: true })?.into_any(),
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Associated>()?;
    m.add_class::<Refused>()?;
    m.add_class::<AssociationFailed>()?;
    m.add_class::<Response>()?;
    m.add_class::<Timeout>()?;
    m.add_class::<NeedCounters>()?;
    m.add_class::<CounterHint>()?;
    m.add_class::<LateAnswerDropped>()?;
    m.add_class::<ProtocolError>()?;
    m.add_class::<Unsolicited>()?;
    m.add_class::<Released>()?;
    m.add_class::<QuirkTaken>()?;
    m.add_class::<Request>()?;
    m.add_class::<GetRequest>()?;
    m.add_class::<SetRequest>()?;
    m.add_class::<ActionRequest>()?;
    Ok(())
}
