//! Conversions of the short-name (SN) referencing values for Python.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::assoc::{Referencing, ShortNameEntry, ShortNames};

pub(super) fn referencing_of(name: &str) -> PyResult<Referencing> {
    match name {
        "ln" => Ok(Referencing::Ln),
        "sn" => Ok(Referencing::Sn),
        other => Err(PyValueError::new_err(format!("referencing {other:?}: expected \"ln\" or \"sn\""))),
    }
}

pub(super) fn entries_of(t: &ShortNames) -> Vec<(u16, u16, u8, Vec<u8>)> {
    t.entries().iter().map(|e| (e.base_name, e.class_id, e.version, e.obis.to_vec())).collect()
}

pub(super) fn table_of(entries: Vec<(u16, u16, u8, Vec<u8>)>) -> PyResult<ShortNames> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, (base_name, class_id, version, ln)) in entries.into_iter().enumerate() {
        let obis = <[u8; 6]>::try_from(ln.as_slice()).map_err(|_| {
            PyValueError::new_err(format!("short names entry {i}: logical name of {} bytes, expected 6", ln.len()))
        })?;
        out.push(ShortNameEntry { base_name, class_id, version, obis });
    }
    Ok(ShortNames::new(out))
}
