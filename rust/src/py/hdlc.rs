//! Python bindings of the link layers: `crc16_x25`, the HDLC codec, framer and
//! link (`HdlcFrame`, `hdlc_encode`, `hdlc_decode`, `HdlcFramer`, `HdlcLink`)
//! and the IEC 62056-47 wrapper (`wrapper_encode`, `WrapperFramer`).
//! Conversion and error mapping only.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::to_py_err;
use crate::crc;
use crate::hdlc::{self, Address, Frame, FrameKind, Link, LinkConfig, Parameters, Role};
use crate::wrapper;

/// One decoded HDLC frame (frame format type 3).
#[pyclass(name = "HdlcFrame", module = "smmc_gateway._core", frozen)]
pub struct PyHdlcFrame {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    segmented: bool,
    #[pyo3(get)]
    dest_upper: u16,
    #[pyo3(get)]
    dest_lower: Option<u16>,
    #[pyo3(get)]
    src_upper: u16,
    #[pyo3(get)]
    src_lower: Option<u16>,
    /// Bytes of each address on the wire: 1, 2 or 4.
    #[pyo3(get)]
    dest_size: u8,
    #[pyo3(get)]
    src_size: u8,
    #[pyo3(get)]
    control: u8,
    #[pyo3(get)]
    send_seq: Option<u8>,
    #[pyo3(get)]
    recv_seq: Option<u8>,
    #[pyo3(get)]
    poll_final: bool,
    info: Vec<u8>,
    #[pyo3(get)]
    length: usize,
}

impl PyHdlcFrame {
    fn from_frame(f: Frame) -> Self {
        let length = 2
            + 2
            + f.dest.size as usize
            + f.src.size as usize
            + 1
            + 2
            + if f.info.is_empty() { 0 } else { 2 + f.info.len() };
        PyHdlcFrame {
            kind: f.kind().name(),
            segmented: f.segmented,
            dest_upper: f.dest.upper,
            dest_lower: f.dest.lower,
            src_upper: f.src.upper,
            src_lower: f.src.lower,
            dest_size: f.dest.size,
            src_size: f.src.size,
            control: f.control.byte(),
            send_seq: f.control.send_seq,
            recv_seq: f.control.recv_seq,
            poll_final: f.control.poll_final,
            info: f.info,
            length,
        }
    }
}

#[pymethods]
impl PyHdlcFrame {
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.info)
    }

    fn __repr__(&self) -> String {
        let addr = |u: u16, l: Option<u16>| l.map_or(format!("{u}"), |l| format!("{u}/{l}"));
        format!(
            "HdlcFrame({} dest={} src={} ns={:?} nr={:?} pf={} seg={} info={} bytes)",
            self.kind,
            addr(self.dest_upper, self.dest_lower),
            addr(self.src_upper, self.src_lower),
            self.send_seq,
            self.recv_seq,
            self.poll_final,
            self.segmented,
            self.info.len()
        )
    }
}

/// The parameters of an SNRM/UA information field, in order:
/// `(identifier, name or None, value, offset within info)`.
type ParameterRow = (u8, Option<&'static str>, u32, usize);

#[pyfunction]
fn hdlc_parameters(info: &[u8]) -> PyResult<Vec<ParameterRow>> {
    let entries = hdlc::params::entries(info).map_err(to_py_err)?;
    Ok(entries.into_iter().map(|e| (e.id, e.name(), e.value, e.offset)).collect())
}

/// CRC-16/X.25 (HDLC FCS), as the integer; on the wire it is little-endian.
#[pyfunction]
fn crc16_x25(py: Python<'_>, data: &[u8]) -> u16 {
    if data.len() > 1 << 16 {
        py.detach(|| crc::crc16_x25(data))
    } else {
        crc::crc16_x25(data)
    }
}

fn address(upper: u16, lower: Option<u16>, size: Option<u8>) -> PyResult<Address> {
    Address::with_size(upper, lower, if lower.is_some() { size } else { None }).map_err(to_py_err)
}

/// One complete frame, flags included.
#[pyfunction]
#[pyo3(signature = (kind, *, dest_upper, dest_lower=None, src_upper, src_lower=None, send_seq=0, recv_seq=0,
    poll_final=true, segmented=false, info=None, address_size=None))]
#[allow(clippy::too_many_arguments)]
fn hdlc_encode<'py>(
    py: Python<'py>,
    kind: &str,
    dest_upper: u16,
    dest_lower: Option<u16>,
    src_upper: u16,
    src_lower: Option<u16>,
    send_seq: u8,
    recv_seq: u8,
    poll_final: bool,
    segmented: bool,
    info: Option<&[u8]>,
    address_size: Option<u8>,
) -> PyResult<Bound<'py, PyBytes>> {
    let kind = FrameKind::from_name(kind).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown frame kind {kind:?}: expected I, RR, RNR, SNRM, DISC, UA, DM, FRMR or UI"
        ))
    })?;
    if send_seq > 7 || recv_seq > 7 {
        return Err(PyValueError::new_err("send_seq and recv_seq are 0..7"));
    }
    let mut f = Frame::new(
        kind,
        address(dest_upper, dest_lower, address_size)?,
        address(src_upper, src_lower, address_size)?,
        poll_final,
    );
    f.segmented = segmented;
    if kind == FrameKind::I {
        f.control.send_seq = Some(send_seq);
    }
    if f.control.recv_seq.is_some() {
        f.control.recv_seq = Some(recv_seq);
    }
    f.info = info.unwrap_or_default().to_vec();
    let wire = f.encode().map_err(to_py_err)?;
    Ok(PyBytes::new(py, &wire))
}

/// Exactly one frame (with or without the 0x7E flags); checks HCS and FCS.
#[pyfunction]
fn hdlc_decode(frame: &[u8]) -> PyResult<PyHdlcFrame> {
    hdlc::decode(frame).map(PyHdlcFrame::from_frame).map_err(to_py_err)
}

/// Finds frames in a noisy byte stream and resynchronises after garbage or a bad FCS.
#[pyclass(name = "HdlcFramer", module = "smmc_gateway._core")]
pub struct PyHdlcFramer {
    inner: hdlc::Framer,
}

#[pymethods]
impl PyHdlcFramer {
    #[new]
    #[pyo3(signature = (max_frame=2048))]
    fn new(max_frame: usize) -> Self {
        PyHdlcFramer { inner: hdlc::Framer::new(max_frame) }
    }

    fn feed(&mut self, data: &[u8]) {
        self.inner.feed(data);
    }

    fn next_frame(&mut self) -> Option<PyHdlcFrame> {
        self.inner.next_frame().map(PyHdlcFrame::from_frame)
    }

    /// Every complete frame buffered now (the GIL is released while decoding).
    fn drain(&mut self, py: Python<'_>) -> Vec<PyHdlcFrame> {
        let inner = &mut self.inner;
        let frames = py.detach(|| inner.drain());
        frames.into_iter().map(PyHdlcFrame::from_frame).collect()
    }

    fn errors(&mut self) -> Vec<String> {
        self.inner.take_errors()
    }

    #[getter]
    fn discarded_bytes(&self) -> u64 {
        self.inner.discarded_bytes()
    }
}

/// The sans-IO HDLC link state machine (IEC 62056-46), client or server role.
#[pyclass(name = "HdlcLink", module = "smmc_gateway._core")]
pub struct PyHdlcLink {
    inner: Link,
}

#[pymethods]
impl PyHdlcLink {
    #[new]
    #[pyo3(signature = (role, *, client_address, server_upper=1, server_lower=None, address_size=None,
        max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1, response_timeout=3.0, max_retries=3,
        inactivity_timeout=None, max_reassembly=hdlc::MAX_REASSEMBLY))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        role: &str,
        client_address: u8,
        server_upper: u16,
        server_lower: Option<u16>,
        address_size: Option<u8>,
        max_info_tx: u32,
        max_info_rx: u32,
        window_tx: u32,
        window_rx: u32,
        response_timeout: f64,
        max_retries: u32,
        inactivity_timeout: Option<f64>,
        max_reassembly: usize,
    ) -> PyResult<Self> {
        let role = match role {
            "client" => Role::Client,
            "server" => Role::Server,
            r => return Err(PyValueError::new_err(format!("role {r:?}: expected 'client' or 'server'"))),
        };
        if !(response_timeout.is_finite() && response_timeout > 0.0) {
            return Err(PyValueError::new_err("response_timeout must be a positive number of seconds"));
        }
        if inactivity_timeout.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
            return Err(PyValueError::new_err("inactivity_timeout must be a positive number of seconds or None"));
        }
        if !(1..=7).contains(&window_tx) || !(1..=7).contains(&window_rx) {
            return Err(PyValueError::new_err("window_tx and window_rx are 1..7"));
        }
        if !(1..=hdlc::params::MAX_INFO_LIMIT).contains(&max_info_tx)
            || !(1..=hdlc::params::MAX_INFO_LIMIT).contains(&max_info_rx)
        {
            return Err(PyValueError::new_err("max_info_tx and max_info_rx are 1..2030"));
        }
        check_reassembly(max_reassembly)?;
        let client = Address::client(client_address).map_err(to_py_err)?;
        let server = Address::with_size(server_upper, server_lower, address_size).map_err(to_py_err)?;
        let params = Parameters { max_info_tx, max_info_rx, window_tx, window_rx };
        let cfg = LinkConfig {
            role,
            client,
            server,
            params,
            response_timeout,
            max_retries,
            inactivity_timeout,
            max_reassembly,
        };
        Ok(PyHdlcLink { inner: Link::new(cfg) })
    }

    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().name()
    }

    #[getter]
    fn parameters(&self) -> super::link_events::LinkParameters {
        super::link_events::parameters(&self.inner.parameters())
    }

    /// The longest APDU (LLC header excluded) reassembled from segments.
    #[getter]
    fn max_reassembly(&self) -> usize {
        self.inner.max_reassembly()
    }

    /// Change the reassembly limit (1..=1 MiB); it applies from the next segment on.
    fn set_max_reassembly(&mut self, limit: usize) -> PyResult<()> {
        check_reassembly(limit)?;
        self.inner.set_max_reassembly(limit);
        Ok(())
    }

    fn connect(&mut self, now: f64) -> PyResult<()> {
        self.inner.connect(now).map_err(to_py_err)
    }

    fn disconnect(&mut self, now: f64) -> PyResult<()> {
        self.inner.disconnect(now).map_err(to_py_err)
    }

    fn send_apdu(&mut self, apdu: &[u8], now: f64) -> PyResult<()> {
        self.inner.send_apdu(apdu, now).map_err(to_py_err)
    }

    fn send_ui(&mut self, data: &[u8]) -> PyResult<()> {
        self.inner.send_ui(data).map_err(to_py_err)
    }

    fn receive_data(&mut self, data: &[u8], now: f64) {
        self.inner.receive_data(data, now);
    }

    /// The next event, a frozen class per kind (see `link_events.rs`).
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.inner.next_event().map(|e| super::link_events::event(py, e)).transpose()
    }

    fn data_to_send<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.data_to_send())
    }

    fn next_deadline(&self) -> Option<f64> {
        self.inner.next_deadline()
    }

    fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(now);
    }
}

fn check_reassembly(limit: usize) -> PyResult<()> {
    if !(1..=hdlc::MAX_REASSEMBLY).contains(&limit) {
        return Err(PyValueError::new_err(format!(
            "max_reassembly {limit}: must be 1..{} bytes",
            hdlc::MAX_REASSEMBLY
        )));
    }
    Ok(())
}

/// A wrapper frame (IEC 62056-47): version 1, source and destination wPorts, length.
#[pyfunction]
fn wrapper_encode<'py>(py: Python<'py>, source: u16, dest: u16, apdu: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let w = wrapper::encode(source, dest, apdu).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &w))
}

/// The 8-byte wrapper header at the start of `data`, as read:
/// `(version, source wPort, destination wPort, APDU length)`.
#[pyfunction]
fn wrapper_header(data: &[u8]) -> PyResult<(u16, u16, u16, u16)> {
    let h = wrapper::header(data).map_err(to_py_err)?;
    Ok((h.version, h.source, h.dest, h.length))
}

/// Splits a TCP byte stream into wrapper frames.
#[pyclass(name = "WrapperFramer", module = "smmc_gateway._core")]
pub struct PyWrapperFramer {
    inner: wrapper::WrapperFramer,
}

#[pymethods]
impl PyWrapperFramer {
    #[new]
    #[pyo3(signature = (max_apdu=65535))]
    fn new(max_apdu: usize) -> Self {
        PyWrapperFramer { inner: wrapper::WrapperFramer::new(max_apdu) }
    }

    /// The longest APDU accepted (a longer length field is a WrapperError).
    #[getter]
    fn max_apdu(&self) -> usize {
        self.inner.max_apdu()
    }

    #[setter]
    fn set_max_apdu(&mut self, max_apdu: usize) {
        self.inner.set_max_apdu(max_apdu);
    }

    fn feed(&mut self, data: &[u8]) {
        self.inner.feed(data);
    }

    fn next_frame<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u16, u16, Bound<'py, PyBytes>)>> {
        let f = self.inner.next_frame().map_err(to_py_err)?;
        Ok(f.map(|f| (f.source, f.dest, PyBytes::new(py, &f.apdu))))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(crc16_x25, m)?)?;
    m.add_function(wrap_pyfunction!(hdlc_encode, m)?)?;
    m.add_function(wrap_pyfunction!(hdlc_decode, m)?)?;
    m.add_function(wrap_pyfunction!(hdlc_parameters, m)?)?;
    m.add_function(wrap_pyfunction!(wrapper_header, m)?)?;
    m.add_function(wrap_pyfunction!(wrapper_encode, m)?)?;
    m.add_class::<PyHdlcFrame>()?;
    m.add_class::<PyHdlcFramer>()?;
    m.add_class::<PyHdlcLink>()?;
    m.add_class::<PyWrapperFramer>()?;
    Ok(())
}
