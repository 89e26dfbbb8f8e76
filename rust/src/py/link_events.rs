//! The events of the HDLC link (`HdlcLink.next_event()`) and its negotiated
//! parameters as frozen Python classes, one class per kind (each also names
//! its kind in `kind`, the name the link's documentation uses). Conversion only.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::hdlc::{Event, Parameters};

/// The negotiated HDLC parameters (information field lengths, windows).
#[pyclass(name = "LinkParameters", module = "smmc_gateway._core", frozen, eq)]
#[derive(PartialEq, Eq)]
pub struct LinkParameters {
    #[pyo3(get)]
    max_info_tx: u32,
    #[pyo3(get)]
    max_info_rx: u32,
    #[pyo3(get)]
    window_tx: u32,
    #[pyo3(get)]
    window_rx: u32,
}

#[pymethods]
impl LinkParameters {
    fn __repr__(&self) -> String {
        format!(
            "LinkParameters(max_info_tx={}, max_info_rx={}, window_tx={}, window_rx={})",
            self.max_info_tx, self.max_info_rx, self.window_tx, self.window_rx
        )
    }
}

pub(super) fn parameters(p: &Parameters) -> LinkParameters {
    LinkParameters {
        max_info_tx: p.max_info_tx,
        max_info_rx: p.max_info_rx,
        window_tx: p.window_tx,
        window_rx: p.window_rx,
    }
}

/// Client: UA received for our SNRM; server: SNRM received and UA queued.
#[pyclass(name = "LinkConnected", module = "smmc_gateway._core", frozen)]
pub struct LinkConnected {
    #[pyo3(get)]
    parameters: Py<LinkParameters>,
}

/// A complete APDU (segments reassembled, LLC header removed).
#[pyclass(name = "LinkApdu", module = "smmc_gateway._core", frozen)]
pub struct LinkApdu {
    data: Vec<u8>,
}

/// The data of a UI frame (LLC header removed).
#[pyclass(name = "LinkUi", module = "smmc_gateway._core", frozen)]
pub struct LinkUi {
    data: Vec<u8>,
}

/// Client: UA/DM for our DISC; server: DISC received.
#[pyclass(name = "LinkDisconnected", module = "smmc_gateway._core", frozen)]
pub struct LinkDisconnected {}

/// The peer answered DM or FRMR where it should not.
#[pyclass(name = "LinkRefused", module = "smmc_gateway._core", frozen)]
pub struct LinkRefused {
    #[pyo3(get)]
    reason: String,
}

/// A timeout fired and the link re-sent (attempt number).
#[pyclass(name = "LinkRetransmit", module = "smmc_gateway._core", frozen)]
pub struct LinkRetransmit {
    #[pyo3(get)]
    attempt: u32,
}

/// Retries exhausted (or the inactivity timeout): the link is now disconnected.
#[pyclass(name = "LinkDown", module = "smmc_gateway._core", frozen)]
pub struct LinkDown {
    #[pyo3(get)]
    reason: String,
}

/// A frame was dropped (bad FCS, wrong address, ...).
#[pyclass(name = "LinkFrameError", module = "smmc_gateway._core", frozen)]
pub struct LinkFrameError {
    #[pyo3(get)]
    reason: String,
}

/// A (segmented) APDU grew past `max_reassembly`: `received` bytes seen so far.
#[pyclass(name = "LinkApduTooLong", module = "smmc_gateway._core", frozen)]
pub struct LinkApduTooLong {
    #[pyo3(get)]
    received: usize,
    #[pyo3(get)]
    limit: usize,
}

macro_rules! kind {
    ($t:ty, $name:literal) => {
        #[pymethods]
        impl $t {
            /// The event's kind as the link's documentation names it.
            #[getter]
            fn kind(&self) -> &'static str {
                $name
            }
        }
    };
}

kind!(LinkConnected, "connected");
kind!(LinkDisconnected, "disconnected");
kind!(LinkRefused, "refused");
kind!(LinkRetransmit, "retransmit");
kind!(LinkDown, "link_lost");
kind!(LinkFrameError, "frame_error");
kind!(LinkApduTooLong, "apdu_too_long");

#[pymethods]
impl LinkApdu {
    #[getter]
    fn kind(&self) -> &'static str {
        "apdu"
    }
    #[getter]
    fn apdu<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }
}

#[pymethods]
impl LinkUi {
    #[getter]
    fn kind(&self) -> &'static str {
        "ui"
    }
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }
}

pub(super) fn event(py: Python<'_>, e: Event) -> PyResult<Py<PyAny>> {
    Ok(match e {
        Event::Connected(p) => Py::new(py, LinkConnected { parameters: Py::new(py, parameters(&p))? })?.into_any(),
        Event::Apdu(data) => Py::new(py, LinkApdu { data })?.into_any(),
        Event::Ui(data) => Py::new(py, LinkUi { data })?.into_any(),
        Event::Disconnected => Py::new(py, LinkDisconnected {})?.into_any(),
        Event::Refused(reason) => Py::new(py, LinkRefused { reason })?.into_any(),
        Event::Retransmit(attempt) => Py::new(py, LinkRetransmit { attempt })?.into_any(),
        Event::LinkLost(reason) => Py::new(py, LinkDown { reason })?.into_any(),
        Event::FrameError(reason) => Py::new(py, LinkFrameError { reason })?.into_any(),
        Event::ApduTooLong { received, limit } => Py::new(py, LinkApduTooLong { received, limit })?.into_any(),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LinkParameters>()?;
    m.add_class::<LinkConnected>()?;
    m.add_class::<LinkApdu>()?;
    m.add_class::<LinkUi>()?;
    m.add_class::<LinkDisconnected>()?;
    m.add_class::<LinkRefused>()?;
    m.add_class::<LinkRetransmit>()?;
    m.add_class::<LinkDown>()?;
    m.add_class::<LinkFrameError>()?;
    m.add_class::<LinkApduTooLong>()?;
    Ok(())
}
