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

// ------------------------------------------------------------------ from dicts

use super::from_dict::{bytes_of, dar_of, get, opt, opt_bytes, raw_of, req, sub};
use crate::apdu::sn::{ReadRequest, ReadResponse, WriteResponse};

const SN_KINDS: [&str; 6] = [
    "read-request",
    "read-response",
    "write-request",
    "write-response",
    "unconfirmed-write-request",
    "information-report-request",
];

pub(super) fn is_sn(kind: &str) -> bool {
    SN_KINDS.contains(&kind)
}

fn list<'py>(d: &Bound<'py, PyDict>, key: &'static str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let v = get(d, key)?;
    let l = v.cast::<PyList>().map_err(|_| super::bad(key, v.to_string(), "a list"))?;
    Ok(l.iter().collect())
}

fn variable_of(v: &Bound<'_, PyAny>) -> PyResult<VariableAccess> {
    let d = sub(v, "variables")?;
    let access: String = req(&d, "access")?;
    Ok(match access.as_str() {
        "variable-name" => VariableAccess::Name(req(&d, "name")?),
        "parameterized-access" => VariableAccess::Parameterized {
            name: req(&d, "name")?,
            selector: req(&d, "selector")?,
            parameters: raw_of(&get(&d, "parameters_raw")?, "parameters_raw")?,
        },
        "block-number-access" => VariableAccess::BlockNumber(req(&d, "block_number")?),
        "read-data-block-access" => VariableAccess::ReadDataBlock {
            last_block: req(&d, "last_block")?,
            block_number: req(&d, "block_number")?,
            raw_data: bytes_of(&get(&d, "raw_data")?, "raw_data")?,
        },
        "write-data-block-access" => VariableAccess::WriteDataBlock {
            last_block: req(&d, "last_block")?,
            block_number: req(&d, "block_number")?,
        },
        other => {
            return Err(super::bad(
                "access",
                format!("{other:?}"),
                "variable-name, parameterized-access, block-number-access, read-data-block-access or \
                 write-data-block-access",
            ))
        }
    })
}

fn variables_of(d: &Bound<'_, PyDict>) -> PyResult<Vec<VariableAccess>> {
    list(d, "variables")?.iter().map(variable_of).collect()
}

fn data_of(d: &Bound<'_, PyDict>) -> PyResult<Vec<Vec<u8>>> {
    list(d, "data_raw")?.iter().map(|v| raw_of(v, "data_raw")).collect()
}

fn read_result_of(v: &Bound<'_, PyAny>) -> PyResult<ReadResult> {
    let d = sub(v, "results")?;
    if let Some(raw) = opt(&d, "data_raw")? {
        return Ok(ReadResult::Data(raw_of(&raw, "data_raw")?));
    }
    if let Some(c) = opt(&d, "data_access_result")? {
        return Ok(ReadResult::DataAccessError(dar_of(&c, "data_access_result")?));
    }
    if let Some(raw) = opt_bytes(&d, "raw_data")? {
        return Ok(ReadResult::DataBlock {
            last_block: req(&d, "last_block")?,
            block_number: req(&d, "block_number")?,
            raw_data: raw,
        });
    }
    Ok(ReadResult::BlockNumber(req(&d, "block_number")?))
}

fn write_result_of(v: &Bound<'_, PyAny>) -> PyResult<WriteResult> {
    if let Ok(d) = v.cast::<PyDict>() {
        return Ok(WriteResult::BlockNumber(req(d, "block_number")?));
    }
    match dar_of(v, "results")? {
        0 => Ok(WriteResult::Success),
        c => Ok(WriteResult::DataAccessError(c)),
    }
}

/// An SN APDU from its dict (`kind` is one of [`SN_KINDS`]).
pub(super) fn sn_from(d: &Bound<'_, PyDict>, kind: &str) -> PyResult<Apdu> {
    Ok(match kind {
        "read-request" => Apdu::ReadRequest(ReadRequest { variables: variables_of(d)? }),
        "read-response" => Apdu::ReadResponse(ReadResponse {
            results: list(d, "results")?.iter().map(read_result_of).collect::<PyResult<_>>()?,
        }),
        "write-request" => Apdu::WriteRequest(WriteRequest { variables: variables_of(d)?, data: data_of(d)? }),
        "unconfirmed-write-request" => {
            Apdu::UnconfirmedWriteRequest(WriteRequest { variables: variables_of(d)?, data: data_of(d)? })
        }
        "write-response" => Apdu::WriteResponse(WriteResponse {
            results: list(d, "results")?.iter().map(write_result_of).collect::<PyResult<_>>()?,
        }),
        _ => Apdu::InformationReport(InformationReport {
            current_time: opt_bytes(d, "current_time")?,
            variables: variables_of(d)?,
            data: data_of(d)?,
        }),
    })
}
