//! The values that cross the association boundary as frozen Python classes:
//! attribute and method references, the typed outcome of a request, why a
//! request failed, a core error, what an association agreed. Conversion only.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::apdu::association::{PROVIDER_DIAGNOSTICS, RESULTS, USER_DIAGNOSTICS};
use crate::apdu::errors::{CONFIRMED_SERVICES, SERVICE_ERRORS, SERVICE_ERROR_CLASSES, STATE_ERRORS};
use crate::apdu::initiate::conformance_names;
use crate::apdu::results::{name_of, value_of, ACTION_RESULTS, DATA_ACCESS_RESULTS};
use crate::apdu::{ActionResult, AttributeDescriptor, Diagnostic, GetDataResult, MethodDescriptor, SelectiveAccess};
use crate::assoc::{Agreement, AttributeRef, MethodRef, Outcome, RequestError, Stats};
use crate::error::{Error, ErrorKind};

/// "a.b.c.d.e.f" or 6 bytes to an OBIS code.
pub(super) fn obis_of(v: &Bound<'_, PyAny>) -> PyResult<[u8; 6]> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return <[u8; 6]>::try_from(b.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("obis: {} bytes, expected 6", b.as_bytes().len())));
    }
    let s: String = v.str()?.extract()?;
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split('.') {
        let value = part.trim().parse::<u8>().ok().filter(|_| n < 6);
        let Some(value) = value else {
            return Err(PyValueError::new_err(format!("obis {s:?}: expected \"a.b.c.d.e.f\" with six numbers 0..255")));
        };
        out[n] = value;
        n += 1;
    }
    if n != 6 {
        return Err(PyValueError::new_err(format!("obis {s:?}: expected \"a.b.c.d.e.f\" with six numbers 0..255")));
    }
    Ok(out)
}

pub(super) fn obis_str(o: &[u8; 6]) -> String {
    format!("{}.{}.{}.{}.{}.{}", o[0], o[1], o[2], o[3], o[4], o[5])
}

/// A result code given as an int or by its Blue Book name.
pub(super) fn code_of(v: &Bound<'_, PyAny>, table: &[(u8, &'static str)], what: &str) -> PyResult<u8> {
    if let Ok(s) = v.cast::<PyString>() {
        let name = s.to_str()?;
        return value_of(table, name)
            .ok_or_else(|| PyValueError::new_err(format!("{what} {name:?} is not a known name")));
    }
    v.extract::<u8>().map_err(|_| PyValueError::new_err(format!("{what}: {v} is neither a name nor 0..255")))
}

fn bytes_or_none(py: Python<'_>, b: Option<&[u8]>) -> Option<Py<PyBytes>> {
    b.map(|b| PyBytes::new(py, b).unbind())
}

/// A COSEM attribute (class, logical name, attribute) with optional selective access.
#[pyclass(name = "Attribute", module = "smmc_gateway._core", frozen, eq)]
#[derive(PartialEq)]
pub struct PyAttribute {
    pub inner: AttributeRef,
}

#[pymethods]
impl PyAttribute {
    #[new]
    #[pyo3(signature = (class_id, obis, attribute_id, *, selector=None, parameters=None))]
    fn new(
        class_id: u16,
        obis: &Bound<'_, PyAny>,
        attribute_id: i8,
        selector: Option<u8>,
        parameters: Option<&[u8]>,
    ) -> PyResult<Self> {
        let access = match (selector, parameters) {
            (None, None) => None,
            (Some(selector), Some(p)) => {
                crate::axdr::decode(p).map_err(super::super::to_py_err)?;
                Some(SelectiveAccess { selector, parameters: p.to_vec() })
            }
            _ => return Err(PyValueError::new_err("selector and parameters go together (selective access)")),
        };
        let attribute = AttributeDescriptor { class_id, obis: obis_of(obis)?, attribute_id };
        Ok(PyAttribute { inner: AttributeRef { attribute, access } })
    }
    #[getter]
    fn class_id(&self) -> u16 {
        self.inner.attribute.class_id
    }
    #[getter]
    fn obis(&self) -> String {
        obis_str(&self.inner.attribute.obis)
    }
    #[getter]
    fn attribute_id(&self) -> i8 {
        self.inner.attribute.attribute_id
    }
    #[getter]
    fn selector(&self) -> Option<u8> {
        self.inner.access.as_ref().map(|a| a.selector)
    }
    #[getter]
    fn parameters(&self, py: Python<'_>) -> Option<Py<PyBytes>> {
        bytes_or_none(py, self.inner.access.as_ref().map(|a| a.parameters.as_slice()))
    }
    fn __repr__(&self) -> String {
        let a = &self.inner.attribute;
        let sel = self.inner.access.as_ref().map_or(String::new(), |s| format!(", selector={}", s.selector));
        format!("Attribute({}, {:?}, {}{sel})", a.class_id, obis_str(&a.obis), a.attribute_id)
    }
}

/// A COSEM method (class, logical name, method).
#[pyclass(name = "Method", module = "smmc_gateway._core", frozen, eq)]
#[derive(PartialEq)]
pub struct PyMethod {
    pub inner: MethodRef,
}

#[pymethods]
impl PyMethod {
    #[new]
    fn new(class_id: u16, obis: &Bound<'_, PyAny>, method_id: i8) -> PyResult<Self> {
        Ok(PyMethod { inner: MethodDescriptor { class_id, obis: obis_of(obis)?, method_id } })
    }
    #[getter]
    fn class_id(&self) -> u16 {
        self.inner.class_id
    }
    #[getter]
    fn obis(&self) -> String {
        obis_str(&self.inner.obis)
    }
    #[getter]
    fn method_id(&self) -> i8 {
        self.inner.method_id
    }
    fn __repr__(&self) -> String {
        format!("Method({}, {:?}, {})", self.inner.class_id, obis_str(&self.inner.obis), self.inner.method_id)
    }
}

/// One item of a GET answer: the value (raw A-XDR) or a data-access-result.
#[pyclass(name = "GetResult", module = "smmc_gateway._core", frozen)]
pub struct PyGetResult {
    #[pyo3(get)]
    data: Option<Py<PyBytes>>,
    #[pyo3(get)]
    error: Option<u8>,
}

#[pymethods]
impl PyGetResult {
    /// The data-access-result's name (None with data).
    #[getter]
    fn error_name(&self) -> Option<&'static str> {
        self.error.map(|e| name_of(DATA_ACCESS_RESULTS, e).unwrap_or("unknown"))
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        match (&self.data, self.error_name()) {
            (Some(d), _) => format!("GetResult(data={} bytes)", d.bind(py).as_bytes().len()),
            (None, name) => format!("GetResult(error={})", name.unwrap_or("?")),
        }
    }
}

fn get_result(py: Python<'_>, r: GetDataResult) -> PyGetResult {
    match r {
        GetDataResult::Data(d) => PyGetResult { data: Some(PyBytes::new(py, &d).unbind()), error: None },
        GetDataResult::DataAccessResult(e) => PyGetResult { data: None, error: Some(e) },
    }
}

/// One item of an ACTION answer: the action-result and the optional return data.
#[pyclass(name = "ActionResult", module = "smmc_gateway._core", frozen)]
pub struct PyActionResult {
    #[pyo3(get)]
    result: u8,
    /// The return data (raw A-XDR), when the result carries data.
    #[pyo3(get)]
    data: Option<Py<PyBytes>>,
    /// The return data's data-access-result, when it carries one instead.
    #[pyo3(get)]
    data_error: Option<u8>,
}

#[pymethods]
impl PyActionResult {
    #[getter]
    fn result_name(&self) -> &'static str {
        name_of(ACTION_RESULTS, self.result).unwrap_or("unknown")
    }
    #[getter]
    fn data_error_name(&self) -> Option<&'static str> {
        self.data_error.map(|e| name_of(DATA_ACCESS_RESULTS, e).unwrap_or("unknown"))
    }
}

fn action_result(py: Python<'_>, a: ActionResult) -> PyActionResult {
    let (data, data_error) = match a.return_data {
        None => (None, None),
        Some(GetDataResult::Data(d)) => (Some(PyBytes::new(py, &d).unbind()), None),
        Some(GetDataResult::DataAccessResult(e)) => (None, Some(e)),
    };
    PyActionResult { result: a.result, data, data_error }
}

/// The answer to a GET: one result per attribute, in order.
#[pyclass(name = "GetOutcome", module = "smmc_gateway._core", frozen)]
pub struct PyGetOutcome {
    #[pyo3(get)]
    results: Py<PyTuple>,
}

/// The answer to a SET: one data-access-result per attribute, in order.
#[pyclass(name = "SetOutcome", module = "smmc_gateway._core", frozen)]
pub struct PySetOutcome {
    #[pyo3(get)]
    results: Py<PyTuple>,
}

#[pymethods]
impl PySetOutcome {
    /// The results by name ("success", "read-write-denied", ...).
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let codes: Vec<u8> = self.results.bind(py).extract()?;
        PyTuple::new(py, codes.into_iter().map(|c| name_of(DATA_ACCESS_RESULTS, c).unwrap_or("unknown")))
    }
}

/// The answer to an ACTION: one result per method, in order.
#[pyclass(name = "ActionOutcome", module = "smmc_gateway._core", frozen)]
pub struct PyActionOutcome {
    #[pyo3(get)]
    results: Py<PyTuple>,
}

pub(super) fn outcome(py: Python<'_>, o: Outcome) -> PyResult<Py<PyAny>> {
    Ok(match o {
        Outcome::Get(v) => {
            let items: Vec<PyGetResult> = v.into_iter().map(|r| get_result(py, r)).collect();
            Py::new(py, PyGetOutcome { results: PyTuple::new(py, items)?.unbind() })?.into_any()
        }
        Outcome::Set(v) => Py::new(py, PySetOutcome { results: PyTuple::new(py, v)?.unbind() })?.into_any(),
        Outcome::Action(v) => {
            let items: Vec<PyActionResult> = v.into_iter().map(|r| action_result(py, r)).collect();
            Py::new(py, PyActionOutcome { results: PyTuple::new(py, items)?.unbind() })?.into_any()
        }
    })
}

/// A core error as a value: layer, field, offset, the whole message, and for
/// a size limit the size seen, the limit and (for a reassembled transfer) the block.
#[pyclass(name = "ErrorInfo", module = "smmc_gateway._core", frozen)]
pub struct PyErrorInfo {
    #[pyo3(get)]
    layer: &'static str,
    #[pyo3(get)]
    field: &'static str,
    #[pyo3(get)]
    offset: usize,
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    length: Option<usize>,
    #[pyo3(get)]
    limit: Option<usize>,
    #[pyo3(get)]
    block: Option<u32>,
}

#[pymethods]
impl PyErrorInfo {
    fn __str__(&self) -> String {
        self.message.clone()
    }
    fn __repr__(&self) -> String {
        format!("ErrorInfo({:?})", self.message)
    }
}

pub(super) fn error_info(py: Python<'_>, e: &Error) -> PyResult<Py<PyErrorInfo>> {
    let (kind, length, limit, block) = match &e.kind {
        ErrorKind::Truncated { .. } => ("truncated", None, None, None),
        ErrorKind::UnknownTag(_) => ("unknown-tag", None, None, None),
        ErrorKind::Invalid { .. } => ("invalid", None, None, None),
        ErrorKind::Checksum { .. } => ("checksum", None, None, None),
        ErrorKind::TooLong { length, limit } => ("too-long", Some(*length), Some(*limit), None),
        ErrorKind::TooLongAtBlock { length, limit, block } => ("too-long", Some(*length), Some(*limit), Some(*block)),
        ErrorKind::TooDeep(_) => ("too-deep", None, None, None),
        ErrorKind::NoAnswer { .. } => ("no-answer", None, None, None),
        ErrorKind::Trailing(_) => ("trailing", None, None, None),
        ErrorKind::AuthenticationFailed => ("authentication-failed", None, None, None),
        ErrorKind::Unsupported(_) => ("unsupported", None, None, None),
        ErrorKind::Other(_) => ("other", None, None, None),
    };
    Py::new(
        py,
        PyErrorInfo {
            layer: e.layer.name(),
            field: e.field,
            offset: e.offset,
            kind,
            message: e.to_string(),
            length,
            limit,
            block,
        },
    )
}

/// Why a request has no outcome. `kind` is one of "exception" (an
/// exception-response: `state_error`, `service_error`, and for
/// invocation-counter-error the `invocation_counter` it names, a hint),
/// "confirmed-service-error" (`service`, `error`, `value`), "protocol" and
/// "security" (`error_info` says what), "abandoned" (released, reset, or the
/// association failed). `message` says it all in words.
#[pyclass(name = "RequestFailure", module = "smmc_gateway._core", frozen)]
pub struct PyRequestFailure {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    state_error: Option<u8>,
    #[pyo3(get)]
    service_error: Option<u8>,
    #[pyo3(get)]
    invocation_counter: Option<u32>,
    #[pyo3(get)]
    service: Option<u8>,
    #[pyo3(get)]
    error: Option<u8>,
    #[pyo3(get)]
    value: Option<u8>,
    #[pyo3(get)]
    error_info: Option<Py<PyErrorInfo>>,
}

#[pymethods]
impl PyRequestFailure {
    #[getter]
    fn state_error_name(&self) -> Option<&'static str> {
        self.state_error.map(|v| name_of(STATE_ERRORS, v).unwrap_or("unknown"))
    }
    #[getter]
    fn service_error_name(&self) -> Option<&'static str> {
        self.service_error.map(|v| name_of(SERVICE_ERRORS, v).unwrap_or("unknown"))
    }
    #[getter]
    fn service_name(&self) -> Option<&'static str> {
        self.service.map(|v| name_of(CONFIRMED_SERVICES, v).unwrap_or("unknown"))
    }
    #[getter]
    fn error_name(&self) -> Option<&'static str> {
        self.error.map(|v| name_of(SERVICE_ERROR_CLASSES, v).unwrap_or("unknown"))
    }
    fn __str__(&self) -> String {
        self.message.clone()
    }
    fn __repr__(&self) -> String {
        format!("RequestFailure({}: {:?})", self.kind, self.message)
    }
}

pub(super) fn failure(py: Python<'_>, e: RequestError) -> PyResult<Py<PyRequestFailure>> {
    let message = e.to_string();
    let mut f = PyRequestFailure {
        kind: "",
        message,
        state_error: None,
        service_error: None,
        invocation_counter: None,
        service: None,
        error: None,
        value: None,
        error_info: None,
    };
    match e {
        RequestError::Exception { state_error, service_error, invocation_counter } => {
            f.kind = "exception";
            f.state_error = Some(state_error);
            f.service_error = Some(service_error);
            f.invocation_counter = invocation_counter;
        }
        RequestError::ConfirmedServiceError { service, error, value } => {
            f.kind = "confirmed-service-error";
            (f.service, f.error, f.value) = (Some(service), Some(error), Some(value));
        }
        RequestError::Protocol(e) => {
            f.kind = "protocol";
            f.error_info = Some(error_info(py, &e)?);
        }
        RequestError::Security(e) => {
            f.kind = "security";
            f.error_info = Some(error_info(py, &e)?);
        }
        RequestError::Abandoned(_) => f.kind = "abandoned",
    }
    Py::new(py, f)
}

/// What an association agreed.
#[pyclass(name = "Agreement", module = "smmc_gateway._core", frozen)]
pub struct PyAgreement {
    #[pyo3(get)]
    conformance: u32,
    #[pyo3(get)]
    peer_max_pdu: u16,
    #[pyo3(get)]
    dlms_version: u8,
    #[pyo3(get)]
    peer_system_title: Option<Py<PyBytes>>,
    #[pyo3(get)]
    mechanism: u8,
    #[pyo3(get)]
    ciphered: bool,
    #[pyo3(get)]
    dedicated_key: bool,
    #[pyo3(get)]
    quirks_used: Vec<&'static str>,
    #[pyo3(get)]
    initiate_response_missing: bool,
}

#[pymethods]
impl PyAgreement {
    /// The negotiated conformance as Green Book bit names, bit 0 first.
    #[getter]
    fn conformance_names(&self) -> Vec<&'static str> {
        conformance_names(self.conformance)
    }
    fn __repr__(&self) -> String {
        format!(
            "Agreement(conformance=0x{:06x}, peer_max_pdu={}, mechanism={}, ciphered={})",
            self.conformance,
            self.peer_max_pdu,
            self.mechanism,
            if self.ciphered { "True" } else { "False" }
        )
    }
}

pub(super) fn agreement(py: Python<'_>, a: &Agreement) -> PyResult<Py<PyAgreement>> {
    Py::new(
        py,
        PyAgreement {
            conformance: a.conformance,
            peer_max_pdu: a.peer_max_pdu,
            dlms_version: a.dlms_version,
            peer_system_title: bytes_or_none(py, a.peer_system_title.as_ref().map(|t| &t[..])),
            mechanism: a.mechanism,
            ciphered: a.ciphered,
            dedicated_key: a.dedicated_key,
            quirks_used: a.quirks_used.clone(),
            initiate_response_missing: a.initiate_response_missing,
        },
    )
}

/// An AARE result and diagnostic by number and name.
pub(super) fn result_name(result: i64) -> &'static str {
    u8::try_from(result).ok().and_then(|r| name_of(RESULTS, r)).unwrap_or("unknown")
}

/// (value, source, name) of an associate-source-diagnostic.
pub(super) fn diagnostic(d: Option<Diagnostic>) -> (Option<i64>, Option<&'static str>, Option<&'static str>) {
    match d {
        None => (None, None, None),
        Some(Diagnostic::ServiceUser(v)) => {
            let name = u8::try_from(v).ok().and_then(|v| name_of(USER_DIAGNOSTICS, v)).unwrap_or("unknown");
            (Some(v), Some("acse-service-user"), Some(name))
        }
        Some(Diagnostic::ServiceProvider(v)) => {
            let name = u8::try_from(v).ok().and_then(|v| name_of(PROVIDER_DIAGNOSTICS, v)).unwrap_or("unknown");
            (Some(v), Some("acse-service-provider"), Some(name))
        }
    }
}

/// What a machine dropped or refused (for metrics).
#[pyclass(name = "AssociationStats", module = "smmc_gateway._core", frozen)]
pub struct PyStats {
    #[pyo3(get)]
    apdus_received: u64,
    #[pyo3(get)]
    apdus_sent: u64,
    #[pyo3(get)]
    dropped_queue_full: u64,
    #[pyo3(get)]
    late_answers_dropped: u64,
    #[pyo3(get)]
    refused: u64,
}

pub(super) fn stats(s: Stats) -> PyStats {
    PyStats {
        apdus_received: s.apdus_received,
        apdus_sent: s.apdus_sent,
        dropped_queue_full: s.dropped_queue_full,
        late_answers_dropped: s.late_answers_dropped,
        refused: s.refused,
    }
}
