//! Python face of security suite 0: AES-GCM-128, protect/unprotect, glo-/ded-/
//! general ciphering, HLS-GMAC, RFC 3394 key wrap. Conversion and error mapping
//! only; the GIL is released for inputs of [`DETACH_AT`] bytes or more.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::to_py_err;
use crate::security::{self, CipherParams, GcmKey as CoreKey};

/// Inputs at least this long are processed with the GIL released.
const DETACH_AT: usize = 8192;

fn ic_u32(ic: u64) -> PyResult<u32> {
    u32::try_from(ic).map_err(|_| {
        to_py_err(crate::Error::invalid(crate::Layer::Security, "invocation counter", 0, ic, "0 ..= 4294967295 (u32)"))
    })
}

fn encrypt<'py>(
    py: Python<'py>,
    key: &CoreKey,
    iv: &[u8],
    aad: &[u8],
    pt: &[u8],
    tag_len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let len = pt.len().saturating_add(tag_len);
    PyBytes::new_with(py, len, |out| {
        let mut run = || key.encrypt_to(iv, aad, pt, tag_len, out);
        if pt.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })
}

fn decrypt<'py>(
    py: Python<'py>,
    key: &CoreKey,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let len = data.len().saturating_sub(tag_len);
    PyBytes::new_with(py, len, |out| {
        let mut run = || key.decrypt_to(iv, aad, data, tag_len, out);
        if data.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })
}

/// An AES-128 key expanded once (key schedule and GHASH key), for repeated use.
#[pyclass(module = "smmc_gateway._core", name = "GcmKey", frozen)]
struct PyGcmKey(CoreKey);

#[pymethods]
impl PyGcmKey {
    #[new]
    fn new(key: &[u8]) -> PyResult<Self> {
        CoreKey::new(key, "key").map(PyGcmKey).map_err(to_py_err)
    }

    #[pyo3(signature = (iv, aad, plaintext, tag_len = 12))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        encrypt(py, &self.0, iv, aad, plaintext, tag_len)
    }

    #[pyo3(signature = (iv, aad, data, tag_len = 12))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
        tag_len: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        decrypt(py, &self.0, iv, aad, data, tag_len)
    }

    fn __repr__(&self) -> &'static str {
        "GcmKey(<secret>)"
    }
}

#[pyfunction]
#[pyo3(signature = (key, iv, aad, plaintext, tag_len = 12))]
fn gcm_encrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = CoreKey::new(key, "key").map_err(to_py_err)?;
    encrypt(py, &key, iv, aad, plaintext, tag_len)
}

#[pyfunction]
#[pyo3(signature = (key, iv, aad, data, tag_len = 12))]
fn gcm_decrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = CoreKey::new(key, "key").map_err(to_py_err)?;
    decrypt(py, &key, iv, aad, data, tag_len)
}

/// `ek` is either 16 key bytes or a [`PyGcmKey`] (expanded once, cheaper per call).
fn with_ek<R>(ek: &Bound<'_, PyAny>, f: impl FnOnce(&CoreKey) -> PyResult<R>) -> PyResult<R> {
    if let Ok(key) = ek.cast::<PyGcmKey>() {
        return f(&key.get().0);
    }
    let bytes = ek.cast::<PyBytes>().map_err(|_| {
        to_py_err(crate::Error::invalid(crate::Layer::Security, "EK", 0, "not bytes", "16 bytes or a GcmKey"))
    })?;
    f(&CoreKey::new(bytes.as_bytes(), "EK").map_err(to_py_err)?)
}

#[pyfunction]
fn protect<'py>(
    py: Python<'py>,
    security_control: u8,
    system_title: &[u8],
    invocation_counter: u64,
    ek: &Bound<'py, PyAny>,
    ak: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let ic = ic_u32(invocation_counter)?;
    let out = with_ek(ek, |ek| {
        let p = CipherParams { security_control, system_title, invocation_counter: ic, ek, ak };
        let run = || security::protect(&p, plaintext);
        if plaintext.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (system_title, ek, ak, data, *, required_protection = 0))]
fn unprotect<'py>(
    py: Python<'py>,
    system_title: &[u8],
    ek: &Bound<'py, PyAny>,
    ak: &[u8],
    data: &[u8],
    required_protection: u8,
) -> PyResult<(u8, u32, Bound<'py, PyBytes>)> {
    let (sc, ic, pt) = with_ek(ek, |ek| {
        let run = || security::unprotect(system_title, ek, ak, data, required_protection);
        if data.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })?;
    Ok((sc, ic, PyBytes::new(py, &pt)))
}

#[pyfunction]
#[pyo3(signature = (apdu, *, security_control, system_title, invocation_counter, ek, ak, dedicated = false, general = false))]
#[allow(clippy::too_many_arguments)]
fn cipher_apdu<'py>(
    py: Python<'py>,
    apdu: &[u8],
    security_control: u8,
    system_title: &[u8],
    invocation_counter: u64,
    ek: &Bound<'py, PyAny>,
    ak: &[u8],
    dedicated: bool,
    general: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let ic = ic_u32(invocation_counter)?;
    let out = with_ek(ek, |ek| {
        let p = CipherParams { security_control, system_title, invocation_counter: ic, ek, ak };
        let run = || security::cipher_apdu(apdu, &p, dedicated, general);
        if apdu.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, *, system_title, ek, ak, required_protection = 0))]
fn decipher_apdu<'py>(
    py: Python<'py>,
    data: &[u8],
    system_title: Option<&[u8]>,
    ek: &Bound<'py, PyAny>,
    ak: &[u8],
    required_protection: u8,
) -> PyResult<(Bound<'py, PyBytes>, u8, u32, Bound<'py, PyBytes>)> {
    let d = with_ek(ek, |ek| {
        let run = || security::decipher_apdu(data, system_title, ek, ak, required_protection);
        if data.len() >= DETACH_AT { py.detach(run) } else { run() }.map_err(to_py_err)
    })?;
    Ok((PyBytes::new(py, &d.apdu), d.security_control, d.invocation_counter, PyBytes::new(py, &d.system_title)))
}

#[pyfunction]
fn hls_gmac<'py>(
    py: Python<'py>,
    security_control: u8,
    system_title: &[u8],
    invocation_counter: u64,
    ek: &[u8],
    ak: &[u8],
    challenge: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let ic = ic_u32(invocation_counter)?;
    let out = security::hls_gmac(security_control, system_title, ic, ek, ak, challenge).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn hls_gmac_verify(system_title: &[u8], ek: &[u8], ak: &[u8], challenge: &[u8], response: &[u8]) -> PyResult<u32> {
    security::hls_gmac_verify(system_title, ek, ak, challenge, response).map_err(to_py_err)
}

#[pyfunction]
fn aes_key_wrap<'py>(py: Python<'py>, kek: &[u8], key: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &security::aes_key_wrap(kek, key).map_err(to_py_err)?))
}

#[pyfunction]
fn aes_key_unwrap<'py>(py: Python<'py>, kek: &[u8], wrapped: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &security::aes_key_unwrap(kek, wrapped).map_err(to_py_err)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGcmKey>()?;
    m.add_function(wrap_pyfunction!(gcm_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(gcm_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(protect, m)?)?;
    m.add_function(wrap_pyfunction!(unprotect, m)?)?;
    m.add_function(wrap_pyfunction!(cipher_apdu, m)?)?;
    m.add_function(wrap_pyfunction!(decipher_apdu, m)?)?;
    m.add_function(wrap_pyfunction!(hls_gmac, m)?)?;
    m.add_function(wrap_pyfunction!(hls_gmac_verify, m)?)?;
    m.add_function(wrap_pyfunction!(aes_key_wrap, m)?)?;
    m.add_function(wrap_pyfunction!(aes_key_unwrap, m)?)?;
    Ok(())
}
