//! Python face of the association machines (`crate::assoc`): the
//! configuration, `ClientAssociation`, `ServerAssociation`, and the typed
//! values and events they exchange with the shell (`values.rs`,
//! `events.rs`). Conversion and error mapping only; the stubs are in
//! `python/smmc_gateway/_core.pyi`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::to_py_err;
use crate::apdu::initiate::conformance_bit;
use crate::apdu::results::{ACTION_RESULTS, DATA_ACCESS_RESULTS};
use crate::apdu::{ActionResult, GetDataResult};
use crate::assoc::{
    AssociationConfig, Authentication, CipherMode, Ciphering, ClientAssociation, ClientState, Keys, Outcome,
    ServerAssociation, ServerState,
};

mod events;
mod sn;
mod values;

use values::{code_of, PyAttribute, PyMethod};

fn array<const N: usize>(b: &[u8], what: &str) -> PyResult<[u8; N]> {
    <[u8; N]>::try_from(b).map_err(|_| PyValueError::new_err(format!("{what}: {} bytes, expected {N}", b.len())))
}

fn conformance_of(v: &Bound<'_, PyAny>) -> PyResult<u32> {
    if let Ok(i) = v.extract::<u32>() {
        return Ok(i);
    }
    let mut bits = 0;
    for name in v.try_iter()? {
        let name: String = name?.extract()?;
        bits |= conformance_bit(&name)
            .ok_or_else(|| PyValueError::new_err(format!("conformance: {name:?} is not a conformance bit name")))?;
    }
    Ok(bits)
}

/// The configuration of an association, either role (validated when built).
#[pyclass(name = "AssociationConfig", module = "smmc_gateway._core", frozen)]
pub struct PyAssociationConfig {
    inner: AssociationConfig,
}

#[pymethods]
impl PyAssociationConfig {
    #[new]
    #[pyo3(signature = (*, authentication="none", password=None, system_title=None, ek=None, ak=None,
        security_control=None, cipher_mode="glo", peer_system_title=None, conformance=None,
        max_receive_pdu=0xFFFF, max_send_pdu=None, response_timeout=10.0, max_block_transfer=8 << 20,
        max_outstanding=1, invoke_priority_high=true, gbt_window=1, gbt_retries=2, max_events=256,
        max_counter_hint_jump=1 << 20, last_incoming_counter=None, quirks=None, referencing="ln"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        authentication: &str,
        password: Option<&[u8]>,
        system_title: Option<&[u8]>,
        ek: Option<&[u8]>,
        ak: Option<&[u8]>,
        security_control: Option<u8>,
        cipher_mode: &str,
        peer_system_title: Option<&[u8]>,
        conformance: Option<&Bound<'_, PyAny>>,
        max_receive_pdu: u16,
        max_send_pdu: Option<u16>,
        response_timeout: f64,
        max_block_transfer: usize,
        max_outstanding: u8,
        invoke_priority_high: bool,
        gbt_window: u8,
        gbt_retries: u8,
        max_events: usize,
        max_counter_hint_jump: u32,
        last_incoming_counter: Option<u32>,
        quirks: Option<Vec<String>>,
        referencing: &str,
    ) -> PyResult<Self> {
        let referencing = sn::referencing_of(referencing)?;
        let authentication = match (authentication, password) {
            ("none", None) => Authentication::None,
            ("lls", Some(p)) => Authentication::Lls { password: p.to_vec() },
            ("hls-gmac", None) => Authentication::HlsGmac,
            ("lls", None) => return Err(PyValueError::new_err("authentication \"lls\" needs a password")),
            ("none" | "hls-gmac", Some(_)) => {
                return Err(PyValueError::new_err("a password goes with authentication \"lls\" only"))
            }
            (a, _) => {
                return Err(PyValueError::new_err(format!(
                    "authentication {a:?}: expected \"none\", \"lls\" or \"hls-gmac\""
                )))
            }
        };
        let keys = match (system_title, ek, ak) {
            (None, None, None) => None,
            (Some(t), Some(e), Some(a)) => {
                Some(Keys { system_title: array(t, "system_title")?, ek: array(e, "ek")?, ak: array(a, "ak")? })
            }
            _ => return Err(PyValueError::new_err("system_title, ek and ak go together")),
        };
        let mode = match cipher_mode {
            "glo" => CipherMode::Glo,
            "ded" => CipherMode::Ded,
            "general-glo" => CipherMode::GeneralGlo,
            "general-ded" => CipherMode::GeneralDed,
            m => {
                return Err(PyValueError::new_err(format!(
                    "cipher_mode {m:?}: expected \"glo\", \"ded\", \"general-glo\" or \"general-ded\""
                )))
            }
        };
        let mut cfg = AssociationConfig {
            authentication,
            keys,
            ciphering: security_control.map(|security_control| Ciphering { security_control, mode }),
            peer_system_title: peer_system_title.map(|t| array(t, "peer_system_title")).transpose()?,
            max_receive_pdu,
            max_send_pdu,
            response_timeout,
            max_block_transfer,
            max_outstanding,
            invoke_priority_high,
            gbt_window,
            gbt_retries,
            max_events,
            max_counter_hint_jump,
            last_incoming_counter,
            referencing,
            ..AssociationConfig::default()
        };
        if let Some(q) = quirks {
            cfg.quirks = q; // None: the quirks allowed by default
        }
        if referencing == crate::assoc::Referencing::Sn {
            cfg.conformance = crate::assoc::sn_default_conformance();
        }
        if let Some(c) = conformance {
            cfg.conformance = conformance_of(c)?;
        }
        cfg.validate().map_err(to_py_err)?;
        Ok(PyAssociationConfig { inner: cfg })
    }

    #[getter]
    fn conformance(&self) -> u32 {
        self.inner.conformance
    }
    #[getter]
    fn response_timeout(&self) -> f64 {
        self.inner.response_timeout
    }
    #[getter]
    fn ciphered(&self) -> bool {
        self.inner.ciphering.is_some()
    }
    /// "ln" or "sn".
    #[getter]
    fn referencing(&self) -> &'static str {
        self.inner.referencing.name()
    }
    fn __repr__(&self) -> String {
        format!(
            "AssociationConfig(authentication={:?}, ciphered={}, conformance=0x{:06x})",
            self.inner.authentication.name(),
            self.inner.ciphering.is_some(),
            self.inner.conformance
        )
    }
}

fn attributes(items: &Bound<'_, PyAny>) -> PyResult<Vec<crate::assoc::AttributeRef>> {
    let mut out = Vec::new();
    for a in items.try_iter()? {
        let a = a?;
        let a = a.cast::<PyAttribute>().map_err(|_| PyValueError::new_err("get: items must be Attribute"))?;
        out.push(a.get().inner.clone());
    }
    Ok(out)
}

fn client_state(s: ClientState) -> &'static str {
    match s {
        ClientState::Idle => "idle",
        ClientState::AwaitingAare => "awaiting-aare",
        ClientState::AwaitingHls => "awaiting-hls",
        ClientState::Associated => "associated",
        ClientState::Releasing => "releasing",
    }
}

fn server_state(s: ServerState) -> &'static str {
    match s {
        ServerState::Idle => "idle",
        ServerState::AwaitingHls => "awaiting-hls",
        ServerState::Associated => "associated",
    }
}

fn apdus(py: Python<'_>, out: Vec<Vec<u8>>) -> Vec<Bound<'_, PyBytes>> {
    out.iter().map(|a| PyBytes::new(py, a)).collect()
}

/// The client side of one association (see `crate::assoc`).
#[pyclass(name = "ClientAssociation", module = "smmc_gateway._core")]
pub struct PyClientAssociation {
    inner: ClientAssociation,
}

#[pymethods]
impl PyClientAssociation {
    #[new]
    fn new(config: &Bound<'_, PyAssociationConfig>) -> PyResult<Self> {
        Ok(PyClientAssociation { inner: ClientAssociation::new(config.get().inner.clone()).map_err(to_py_err)? })
    }

    #[pyo3(signature = (now, challenge=None, dedicated_key=None))]
    fn open(&mut self, now: f64, challenge: Option<&[u8]>, dedicated_key: Option<&[u8]>) -> PyResult<()> {
        self.inner.open(now, challenge, dedicated_key).map_err(to_py_err)
    }
    fn release(&mut self, now: f64) -> PyResult<()> {
        self.inner.release(now).map_err(to_py_err)
    }
    /// SN: install the meter's short names from the value (raw A-XDR) of
    /// Association SN attribute 2 (its object list); returns how many objects.
    fn load_short_names(&mut self, object_list: &[u8]) -> PyResult<usize> {
        let t = crate::assoc::ShortNames::from_object_list(object_list).map_err(to_py_err)?;
        let n = t.entries().len();
        self.inner.set_short_names(t);
        Ok(n)
    }
    /// SN: the short names in use, `(base_name, class_id, version, logical_name)` each.
    fn short_names(&self) -> Vec<(u16, u16, u8, Vec<u8>)> {
        sn::entries_of(self.inner.short_names())
    }
    /// SN: UnconfirmedWriteRequest of `(Attribute, value)` items; nothing answers it.
    fn unconfirmed_write(&mut self, items: &Bound<'_, PyAny>) -> PyResult<u64> {
        let mut v = Vec::new();
        for item in items.try_iter()? {
            let (a, value): (Bound<'_, PyAttribute>, Bound<'_, PyBytes>) = item?.extract()?;
            v.push((a.get().inner.clone(), value.as_bytes().to_vec()));
        }
        self.inner.unconfirmed_write(&v).map_err(to_py_err)
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn get(&mut self, items: &Bound<'_, PyAny>, now: f64) -> PyResult<u64> {
        let items = attributes(items)?;
        self.inner.get(&items, now).map_err(to_py_err)
    }
    fn set(&mut self, items: &Bound<'_, PyAny>, now: f64) -> PyResult<u64> {
        let mut v = Vec::new();
        for item in items.try_iter()? {
            let (a, value): (Bound<'_, PyAttribute>, Bound<'_, PyBytes>) = item?.extract()?;
            v.push((a.get().inner.clone(), value.as_bytes().to_vec()));
        }
        self.inner.set(&v, now).map_err(to_py_err)
    }
    fn action(&mut self, items: &Bound<'_, PyAny>, now: f64) -> PyResult<u64> {
        let mut v = Vec::new();
        for item in items.try_iter()? {
            let (m, params): (Bound<'_, PyMethod>, Option<Bound<'_, PyBytes>>) = item?.extract()?;
            v.push((m.get().inner.clone(), params.map(|p| p.as_bytes().to_vec())));
        }
        self.inner.action(&v, now).map_err(to_py_err)
    }
    fn cancel(&mut self, id: u64, now: f64) -> bool {
        self.inner.cancel(id, now)
    }
    fn grant_counters(&mut self, first: u32, count: u32) -> PyResult<()> {
        self.inner.grant_counters(first, count).map_err(to_py_err)
    }
    fn remember_peer_counter(&mut self, title: &[u8], last: u32) -> PyResult<()> {
        self.inner.remember_peer_counter(array(title, "title")?, last);
        Ok(())
    }
    fn receive_data(&mut self, data: &[u8], now: f64) {
        self.inner.receive_data(data, now);
    }
    fn progress(&mut self, now: f64) {
        self.inner.progress(now);
    }
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.inner.next_event().map(|e| events::client_event(py, e)).transpose()
    }
    /// Every event waiting, in order.
    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        while let Some(e) = self.inner.next_event() {
            list.append(events::client_event(py, e)?)?;
        }
        Ok(list)
    }
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        apdus(py, self.inner.data_to_send())
    }
    fn next_deadline(&self) -> Option<f64> {
        self.inner.next_deadline()
    }
    fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(now);
    }
    #[getter]
    fn state(&self) -> &'static str {
        client_state(self.inner.state())
    }
    #[getter]
    fn agreement(&self, py: Python<'_>) -> PyResult<Option<Py<values::PyAgreement>>> {
        self.inner.agreement().map(|a| values::agreement(py, a)).transpose()
    }
    #[getter]
    fn last_incoming_counter(&self) -> Option<u32> {
        self.inner.last_incoming_counter()
    }
    #[getter]
    fn last_outgoing_counter(&self) -> Option<u32> {
        self.inner.last_outgoing_counter()
    }
    #[getter]
    fn confirmed_outgoing_counter(&self) -> Option<u32> {
        self.inner.confirmed_outgoing_counter()
    }
    #[getter]
    fn counters_available(&self) -> u64 {
        self.inner.counters_available()
    }
    #[getter]
    fn pending_requests(&self) -> Vec<u64> {
        self.inner.pending_requests()
    }
    #[getter]
    fn stats(&self) -> values::PyStats {
        values::stats(self.inner.stats())
    }
}

fn get_item(v: &Bound<'_, PyAny>) -> PyResult<GetDataResult> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(GetDataResult::Data(b.as_bytes().to_vec()));
    }
    Ok(GetDataResult::DataAccessResult(code_of(v, DATA_ACCESS_RESULTS, "data-access-result")?))
}

/// The server side of one association (per client SAP, per connection).
#[pyclass(name = "ServerAssociation", module = "smmc_gateway._core")]
pub struct PyServerAssociation {
    inner: ServerAssociation,
}

#[pymethods]
impl PyServerAssociation {
    #[new]
    fn new(config: &Bound<'_, PyAssociationConfig>) -> PyResult<Self> {
        Ok(PyServerAssociation { inner: ServerAssociation::new(config.get().inner.clone()).map_err(to_py_err)? })
    }
    /// Refuse every AARQ (rejected-permanent, no-reason-given) saying `why`.
    fn refuse_all(&mut self, why: &str) {
        self.inner.refuse_all(why);
    }
    /// SN: the objects served, `(base_name, class_id, version, logical_name)`
    /// each (the current association at 0xFA00 is added when missing).
    fn set_short_names(&mut self, entries: Vec<(u16, u16, u8, Vec<u8>)>) -> PyResult<()> {
        self.inner.set_short_names(sn::table_of(entries)?);
        Ok(())
    }
    /// SN: the object list value (raw A-XDR) of the short names served.
    fn sn_object_list<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.short_names().object_list())
    }
    fn set_challenge(&mut self, stoc: &[u8]) -> PyResult<()> {
        self.inner.set_challenge(stoc).map_err(to_py_err)
    }
    fn grant_counters(&mut self, first: u32, count: u32) -> PyResult<()> {
        self.inner.grant_counters(first, count).map_err(to_py_err)
    }
    fn remember_peer_counter(&mut self, title: &[u8], last: u32) -> PyResult<()> {
        self.inner.remember_peer_counter(array(title, "title")?, last);
        Ok(())
    }
    fn receive_data(&mut self, data: &[u8], now: f64) {
        self.inner.receive_data(data, now);
    }
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.inner.next_event().map(|e| events::server_event(py, e)).transpose()
    }
    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        while let Some(e) = self.inner.next_event() {
            list.append(events::server_event(py, e)?)?;
        }
        Ok(list)
    }
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        apdus(py, self.inner.data_to_send())
    }
    /// Answer a GET: per attribute its value (raw A-XDR bytes) or a
    /// data-access-result (int or name).
    fn respond_get(&mut self, id: u64, results: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = results.try_iter()?.map(|r| get_item(&r?)).collect::<PyResult<Vec<_>>>()?;
        self.inner.respond(id, Outcome::Get(v)).map_err(to_py_err)
    }
    /// Answer a SET: per attribute a data-access-result (int or name).
    fn respond_set(&mut self, id: u64, results: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = results
            .try_iter()?
            .map(|r| code_of(&r?, DATA_ACCESS_RESULTS, "data-access-result"))
            .collect::<PyResult<Vec<_>>>()?;
        self.inner.respond(id, Outcome::Set(v)).map_err(to_py_err)
    }
    /// Answer an ACTION: per method `(action-result, return data)`, the
    /// return data None, raw A-XDR bytes or a data-access-result.
    fn respond_action(&mut self, id: u64, results: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut v = Vec::new();
        for r in results.try_iter()? {
            let (result, data): (Bound<'_, PyAny>, Bound<'_, PyAny>) = r?.extract()?;
            let return_data = if data.is_none() { None } else { Some(get_item(&data)?) };
            v.push(ActionResult { result: code_of(&result, ACTION_RESULTS, "action-result")?, return_data });
        }
        self.inner.respond(id, Outcome::Action(v)).map_err(to_py_err)
    }
    fn refuse_request(&mut self, id: u64) -> PyResult<()> {
        self.inner.refuse_request(id).map_err(to_py_err)
    }
    #[getter]
    fn state(&self) -> &'static str {
        server_state(self.inner.state())
    }
    #[getter]
    fn agreement(&self, py: Python<'_>) -> PyResult<Option<Py<values::PyAgreement>>> {
        self.inner.agreement().map(|a| values::agreement(py, a)).transpose()
    }
    #[getter]
    fn client_system_title<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.client_system_title().map(|t| PyBytes::new(py, &t))
    }
    #[getter]
    fn last_incoming_counter(&self) -> Option<u32> {
        self.inner.last_incoming_counter()
    }
    #[getter]
    fn last_outgoing_counter(&self) -> Option<u32> {
        self.inner.last_outgoing_counter()
    }
    #[getter]
    fn counters_available(&self) -> u64 {
        self.inner.counters_available()
    }
    #[getter]
    fn pending_requests(&self) -> Vec<u64> {
        self.inner.pending_requests()
    }
    #[getter]
    fn stats(&self) -> values::PyStats {
        values::stats(self.inner.stats())
    }
}

/// The Green Book names of the conformance bits set in `bits`, bit 0 first.
#[pyfunction]
fn conformance_names(bits: u32) -> Vec<&'static str> {
    crate::apdu::initiate::conformance_names(bits)
}

/// The conformance bits of these names (an unknown name is a ValueError).
#[pyfunction]
fn conformance_bits(names: &Bound<'_, PyAny>) -> PyResult<u32> {
    if names.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err("conformance_bits takes a sequence of names, not one string"));
    }
    conformance_of(names)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAssociationConfig>()?;
    m.add_class::<PyClientAssociation>()?;
    m.add_class::<PyServerAssociation>()?;
    m.add_class::<values::PyAttribute>()?;
    m.add_class::<values::PyMethod>()?;
    m.add_class::<values::PyGetResult>()?;
    m.add_class::<values::PyActionResult>()?;
    m.add_class::<values::PyGetOutcome>()?;
    m.add_class::<values::PySetOutcome>()?;
    m.add_class::<values::PyActionOutcome>()?;
    m.add_class::<values::PyErrorInfo>()?;
    m.add_class::<values::PyRequestFailure>()?;
    m.add_class::<values::PyAgreement>()?;
    m.add_class::<values::PyStats>()?;
    m.add_function(wrap_pyfunction!(conformance_names, m)?)?;
    m.add_function(wrap_pyfunction!(conformance_bits, m)?)?;
    events::register(m)?;
    Ok(())
}
