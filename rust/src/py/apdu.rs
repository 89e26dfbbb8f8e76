//! Python face of the APDU codec: `decode_apdu(bytes) -> dict`,
//! `encode_apdu(dict) -> bytes` and `apdu_kinds()`. Conversion only; the dict
//! shape is documented in `python/smmc_gateway/_core.pyi`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::apdu;
use crate::error::{Error, ErrorKind, Layer};
use crate::py::to_py_err;

mod from_dict;
mod sn_dict;
mod to_dict;

use from_dict::from_dict;
use to_dict::to_dict;

type Table = &'static [(u8, &'static str)];
/// The quirks a tolerant decode took: `(name, detail)`.
type Taken = Vec<(&'static str, String)>;

/// Decode one xDLMS or ACSE APDU to a dict (see the stub for its shape).
#[pyfunction]
fn decode_apdu<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let apdu = apdu::decode(data).map_err(to_py_err)?;
    to_dict(py, &apdu)
}

/// Decode one APDU strictly, else with the quirks allowed (`None`: every
/// decode quirk): the dict and the quirks taken as `(name, detail)`.
#[pyfunction]
#[pyo3(signature = (data, quirks=None))]
fn decode_apdu_tolerant<'py>(
    py: Python<'py>,
    data: &[u8],
    quirks: Option<Vec<String>>,
) -> PyResult<(Bound<'py, PyDict>, Taken)> {
    let tolerance = quirks.map_or(apdu::Tolerance::ALL, |q| apdu::Tolerance::from_names(&q));
    let d = apdu::decode_tolerant(data, tolerance).map_err(to_py_err)?;
    Ok((to_dict(py, &d.value)?, d.quirks.into_iter().map(|t| (t.quirk, t.detail)).collect()))
}

/// Every quirk: `(name, description, allowed by default)`.
#[pyfunction]
fn known_quirks() -> Vec<(&'static str, &'static str, bool)> {
    apdu::quirks::QUIRKS.to_vec()
}

/// Encode a dict shaped like `decode_apdu`'s output.
#[pyfunction]
fn encode_apdu<'py>(py: Python<'py>, apdu: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyBytes>> {
    let a = from_dict(apdu)?;
    // Refuse keys this kind does not have (a misspelt optional key would otherwise be dropped).
    let known = to_dict(py, &a)?;
    for k in apdu.keys() {
        if !known.contains(&k)? {
            let msg = format!("unknown key {k} for kind {:?}", a.kind());
            return Err(to_py_err(Error::new(Layer::Apdu, "apdu", 0, ErrorKind::Other(msg))));
        }
    }
    Ok(PyBytes::new(py, &a.encode()))
}

/// Every kind name `decode_apdu` may return under "apdu".
#[pyfunction]
fn apdu_kinds() -> Vec<&'static str> {
    apdu::kinds()
}

/// Every APDU tag the core knows and its name, by tag.
#[pyfunction]
fn apdu_tag_names() -> Vec<(u8, &'static str)> {
    apdu::tag_names()
}

/// Every ciphered APDU tag: `(tag, name, plain tag inside, dedicated)`; the
/// plain tag is `None` for general-glo-/general-ded-ciphering (any APDU inside).
#[pyfunction]
fn ciphered_apdu_tags() -> Vec<(u8, &'static str, Option<u8>, bool)> {
    use apdu::ciphered::{
        GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING, TAG_GENERAL_DED_CIPHERING, TAG_GENERAL_GLO_CIPHERING,
    };
    let mut v: Vec<_> = apdu::ciphered::ciphered_tags().map(|(t, n, p, d)| (t, n, Some(p), d)).collect();
    v.push((TAG_GENERAL_GLO_CIPHERING, GENERAL_GLO_CIPHERING, None, false));
    v.push((TAG_GENERAL_DED_CIPHERING, GENERAL_DED_CIPHERING, None, true));
    v
}

/// Data-Access-Result (GET/SET) values and names.
#[pyfunction]
fn data_access_results() -> Vec<(u8, &'static str)> {
    apdu::results::DATA_ACCESS_RESULTS.to_vec()
}

/// Action-Result values and names.
#[pyfunction]
fn action_results() -> Vec<(u8, &'static str)> {
    apdu::results::ACTION_RESULTS.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_apdu, m)?)?;
    m.add_function(wrap_pyfunction!(encode_apdu, m)?)?;
    m.add_function(wrap_pyfunction!(apdu_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(decode_apdu_tolerant, m)?)?;
    m.add_function(wrap_pyfunction!(known_quirks, m)?)?;
    m.add_function(wrap_pyfunction!(apdu_tag_names, m)?)?;
    m.add_function(wrap_pyfunction!(ciphered_apdu_tags, m)?)?;
    m.add_function(wrap_pyfunction!(data_access_results, m)?)?;
    m.add_function(wrap_pyfunction!(action_results, m)?)?;
    Ok(())
}

/// An `ApduError` for a bad dict value (offset 0: there are no bytes yet).
fn bad(field: &'static str, found: impl std::fmt::Display, expected: &'static str) -> PyErr {
    to_py_err(Error::invalid(Layer::Apdu, field, 0, found, expected))
}
