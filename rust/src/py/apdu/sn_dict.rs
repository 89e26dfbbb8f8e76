//! The short-name APDUs (`crate::apdu::sn`) as Python dicts (conversion only).
//!
//! Each variable-access-specification is a dict with `access` (its
//! alternative's name) and its fields; short names are ints. Values are
//! `*_raw` bytes (the translator decodes them), result codes names.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::apdu::results::{self, DATA_ACCESS_RESULTS};
use crate::apdu::sn::{InformationReport, ReadResult, VariableAccess, WriteRequest, WriteResult};
use crate::apdu::Apdu;

fn code<'py>(py: Python<'py>, v: u8) -> PyResult<Bound<'py, PyAny>> {
    match results::name_of(DATA_ACCESS_RESULTS, v) {
        Some(n) => Ok(n.into_pyobject(py)?.into_any()),
        None => Ok(v.into_pyobject(py)?.into_any()),
    }
}

fn variable<'py>(py: Python<'py>, v: &VariableAccess) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match v {
        VariableAccess::Name(n) => {
            d.set_item("access", "variable-name")?;
            d.set_item("name", n)?;
        }
        VariableAccess::Parameterized { name, selector, parameters } => {
            d.set_item("access", "parameterized-access")?;
            d.set_item("name", name)?;
            d.set_item("selector", selector)?;
            d.set_item("parameters_raw", PyBytes::new(py, parameters))?;
        }
        VariableAccess::BlockNumber(n) => {
            d.set_item("access", "block-number-access")?;
            d.set_item("block_number", n)?;
        }
        VariableAccess::ReadDataBlock { last_block, block_number, raw_data } => {
            d.set_item("access", "read-data-block-access")?;
            d.set_item("last_block", last_block)?;
            d.set_item("block_number", block_number)?;
            d.set_item("raw_data", PyBytes::new(py, raw_data))?;
        }
        VariableAccess::WriteDataBlock { last_block, block_number } => {
            d.set_item("access", "write-data-block-access")?;
            d.set_item("last_block", last_block)?;
            d.set_item("block_number", block_number)?;
        }
    }
    Ok(d)
}

fn variables<'py>(py: Python<'py>, v: &[VariableAccess]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for x in v {
        l.append(variable(py, x)?)?;
    }
    Ok(l)
}

fn values<'py>(py: Python<'py>, v: &[Vec<u8>]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, v.iter().map(|b| PyBytes::new(py, b)))
}

fn write_to(py: Python<'_>, d: &Bound<'_, PyDict>, w: &WriteRequest) -> PyResult<()> {
    d.set_item("variables", variables(py, &w.variables)?)?;
    d.set_item("data_raw", values(py, &w.data)?)
}

fn report_to(py: Python<'_>, d: &Bound<'_, PyDict>, r: &InformationReport) -> PyResult<()> {
    d.set_item("current_time", r.current_time.as_deref().map(|t| PyBytes::new(py, t)))?;
    d.set_item("variables", variables(py, &r.variables)?)?;
    d.set_item("data_raw", values(py, &r.data)?)
}

/// The fields of an SN APDU (false: `a` is not one).
pub(super) fn sn_to(py: Python<'_>, d: &Bound<'_, PyDict>, a: &Apdu) -> PyResult<bool> {
    match a {
        Apdu::ReadRequest(r) => d.set_item("variables", variables(py, &r.variables)?)?,
        Apdu::WriteRequest(w) | Apdu::UnconfirmedWriteRequest(w) => write_to(py, d, w)?,
        Apdu::InformationReport(r) => report_to(py, d, r)?,
        Apdu::ReadResponse(r) => {
            let l = PyList::empty(py);
            for x in &r.results {
                let e = PyDict::new(py);
                match x {
                    ReadResult::Data(b) => e.set_item("data_raw", PyBytes::new(py, b))?,
                    ReadResult::DataAccessError(v) => e.set_item("data_access_result", code(py, *v)?)?,
                    ReadResult::DataBlock { last_block, block_number, raw_data } => {
                        e.set_item("last_block", last_block)?;
                        e.set_item("block_number", block_number)?;
                        e.set_item("raw_data", PyBytes::new(py, raw_data))?;
                    }
                    ReadResult::BlockNumber(n) => e.set_item("block_number", n)?,
                }
                l.append(e)?;
            }
            d.set_item("results", l)?;
        }
        Apdu::WriteResponse(w) => {
            let l = PyList::empty(py);
            for x in &w.results {
                match x {
                    WriteResult::Success => l.append("success")?,
                    WriteResult::DataAccessError(v) => l.append(code(py, *v)?)?,
                    WriteResult::BlockNumber(n) => {
                        let e = PyDict::new(py);
                        e.set_item("block_number", n)?;
                        l.append(e)?;
                    }
                }
            }
            d.set_item("results", l)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}
