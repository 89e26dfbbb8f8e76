//! Profile buffers for Python: `decode_profile_buffer` (rows of Python values)
//! and `profile_to_json` (MeterReadings IntervalBlocks JSON bytes). The parse
//! runs with the GIL released; Python objects are built afterwards.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDelta, PyList, PyTuple, PyTzInfo};

use super::axdr::datetime_to_py;
use super::errors::ProfileError;
use super::to_py_err;
use crate::axdr::Data;
use crate::cosem_datetime::CosemDateTime;
use crate::profile::json::{self, ColumnSpec as CoreColumn};
use crate::profile::{decode_table, Cell, ClockColumn};

/// One captured value column of a profile, for JSON output.
#[pyclass(module = "smmc_gateway._core", name = "ColumnSpec", frozen, from_py_object)]
#[derive(Clone)]
struct ColumnSpec {
    #[pyo3(get)]
    index: usize,
    #[pyo3(get)]
    reading_type: String,
    #[pyo3(get)]
    obis: String,
    #[pyo3(get)]
    unit: String,
    #[pyo3(get)]
    scaler: i8,
}

#[pymethods]
impl ColumnSpec {
    #[new]
    #[pyo3(signature = (index, reading_type, *, obis=String::new(), unit=String::new(), scaler=0))]
    fn new(index: usize, reading_type: String, obis: String, unit: String, scaler: i8) -> Self {
        ColumnSpec { index, reading_type, obis, unit, scaler }
    }

    fn __repr__(&self) -> String {
        format!(
            "ColumnSpec({}, {:?}, obis={:?}, unit={:?}, scaler={})",
            self.index, self.reading_type, self.obis, self.unit, self.scaler
        )
    }
}

fn bytes_to_str(b: &[u8], what: &str) -> PyResult<String> {
    match what {
        "visible-string" => Ok(b.iter().map(|c| *c as char).collect()),
        _ => String::from_utf8(b.to_vec())
            .map_err(|e| ProfileError::new_err(format!("profile buffer: utf8-string: invalid UTF-8 ({e})"))),
    }
}

fn data_to_py<'py>(
    py: Python<'py>,
    d: &Data,
    tz: &mut Option<(i16, Bound<'py, PyTzInfo>)>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Data::Array(items) | Data::CompactArray { elements: items, .. } => {
            let v = items.iter().map(|i| data_to_py(py, i, tz)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, v)?.into_any()
        }
        Data::Structure(items) => {
            let v = items.iter().map(|i| data_to_py(py, i, tz)).collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, v)?.into_any()
        }
        Data::Null | Data::DontCare => py.None().into_bound(py),
        Data::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Data::BitString { bytes, .. } => PyBytes::new(py, bytes).into_any(),
        Data::DoubleLong(v) => v.into_pyobject(py)?.into_any(),
        Data::DoubleLongUnsigned(v) => v.into_pyobject(py)?.into_any(),
        Data::OctetString(b) if b.len() == 12 => cell_to_py(py, &cell_of_octets(b), tz)?,
        Data::OctetString(b) => PyBytes::new(py, b).into_any(),
        Data::DateTime(b) => cell_to_py(py, &cell_of_octets(b), tz)?,
        Data::Date(x) => PyBytes::new(py, x).into_any(),
        Data::Time(x) => PyBytes::new(py, x).into_any(),
        Data::VisibleString(b) => bytes_to_str(b, "visible-string")?.into_pyobject(py)?.into_any(),
        Data::Utf8String(b) => bytes_to_str(b, "utf8-string")?.into_pyobject(py)?.into_any(),
        Data::Bcd(v) | Data::Integer(v) => v.into_pyobject(py)?.into_any(),
        Data::Long(v) => v.into_pyobject(py)?.into_any(),
        Data::Unsigned(v) | Data::Enum(v) => v.into_pyobject(py)?.into_any(),
        Data::LongUnsigned(v) => v.into_pyobject(py)?.into_any(),
        Data::Long64(v) => v.into_pyobject(py)?.into_any(),
        Data::Long64Unsigned(v) => v.into_pyobject(py)?.into_any(),
        Data::Float32(v) => (*v as f64).into_pyobject(py)?.into_any(),
        Data::Float64(v) => v.into_pyobject(py)?.into_any(),
    })
}

fn cell_of_octets(b: &[u8]) -> Cell<'_> {
    match CosemDateTime::from_slice(b) {
        Ok(dt) => Cell::DateTime(dt),
        Err(_) => Cell::Octets(b),
    }
}

fn cell_to_py<'py>(
    py: Python<'py>,
    c: &Cell<'_>,
    tz: &mut Option<(i16, Bound<'py, PyTzInfo>)>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c {
        Cell::Null | Cell::DontCare => py.None().into_bound(py),
        Cell::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Cell::Int(v) => v.into_pyobject(py)?.into_any(),
        Cell::U64(v) => v.into_pyobject(py)?.into_any(),
        Cell::F32(v) => (*v as f64).into_pyobject(py)?.into_any(),
        Cell::F64(v) => v.into_pyobject(py)?.into_any(),
        Cell::DateTime(dt) | Cell::Derived(dt) => match datetime_to_py(py, dt, tz)? {
            Some(d) => d.into_any(),
            None => py.None().into_bound(py),
        },
        Cell::Octets(b) | Cell::BitString { bytes: b, .. } => PyBytes::new(py, b).into_any(),
        Cell::Visible(b) => bytes_to_str(b, "visible-string")?.into_pyobject(py)?.into_any(),
        Cell::Utf8(b) => bytes_to_str(b, "utf8-string")?.into_pyobject(py)?.into_any(),
        Cell::Date(b) => PyBytes::new(py, b).into_any(),
        Cell::Time(b) => PyBytes::new(py, b).into_any(),
        Cell::Composite(d) => data_to_py(py, d, tz)?,
    })
}

/// Builds the datetimes of one column: when an entry is the previous one
/// plus the same interval as last time (same deviation and hundredths), the
/// new datetime is `previous + interval` (one C-level addition) instead of a
/// constructor call with eight arguments.
#[derive(Default)]
struct DateTimeColumn<'py> {
    tz: Option<(i16, Bound<'py, PyTzInfo>)>,
    prev: Option<(CosemDateTime, i64, Bound<'py, PyAny>)>,
    step: Option<(i64, Bound<'py, PyAny>)>,
}

impl<'py> DateTimeColumn<'py> {
    fn build(&mut self, py: Python<'py>, dt: &CosemDateTime) -> PyResult<Bound<'py, PyAny>> {
        let Some(secs) = dt.local_epoch_seconds() else {
            self.prev = None;
            return Ok(py.None().into_bound(py));
        };
        let next = match &self.prev {
            Some((p, psecs, pobj)) if p.deviation == dt.deviation && p.hundredths == dt.hundredths => {
                let diff = secs - psecs;
                if self.step.as_ref().map(|(d, _)| *d) != Some(diff) {
                    self.step = i32::try_from(diff)
                        .ok()
                        .and_then(|d| PyDelta::new(py, 0, d, 0, true).ok())
                        .map(|d| (diff, d.into_any()));
                }
                match &self.step {
                    Some((d, delta)) if *d == diff => pobj.add(delta).ok(),
                    _ => None,
                }
            }
            _ => None,
        };
        let obj = match next {
            Some(o) => o,
            None => match datetime_to_py(py, dt, &mut self.tz)? {
                Some(d) => d.into_any(),
                None => py.None().into_bound(py),
            },
        };
        self.prev = Some((*dt, secs, obj.clone()));
        Ok(obj)
    }
}

#[pyfunction]
#[pyo3(signature = (data, capture_period=None))]
fn decode_profile_buffer<'py>(
    py: Python<'py>,
    data: &[u8],
    capture_period: Option<u32>,
) -> PyResult<Bound<'py, PyList>> {
    let table = py.detach(|| decode_table(data, ClockColumn::Auto, capture_period)).map_err(to_py_err)?;
    without_gc(py, || rows_to_py(py, &table))
}

/// Run `f` with Python's cyclic garbage collector paused (when it was on):
/// building thousands of row tuples would otherwise trigger a collection
/// every 700 allocations, each traversing the young rows (none of which can
/// be part of a cycle). The GIL is held throughout, so no other thread sees
/// the pause; the collector is switched back on whatever `f` returns.
fn without_gc<'py, T>(py: Python<'py>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let gc = py.import("gc")?;
    let enabled: bool = gc.call_method0("isenabled")?.extract()?;
    if enabled {
        gc.call_method0("disable")?;
    }
    let result = f();
    if enabled {
        gc.call_method0("enable")?;
    }
    result
}

/// The rows of a decoded table as a list of tuples.
fn rows_to_py<'py>(py: Python<'py>, table: &crate::profile::Table<'_>) -> PyResult<Bound<'py, PyList>> {
    let mut tz = None;
    let mut dt_columns: Vec<DateTimeColumn<'py>> = Vec::new();
    let mut rows = Vec::with_capacity(table.rows());
    let mut vals = Vec::with_capacity(16);
    for i in 0..table.rows() {
        vals.clear();
        for (col, c) in table.row(i).iter().enumerate() {
            vals.push(match c {
                Cell::DateTime(dt) | Cell::Derived(dt) => {
                    if dt_columns.len() <= col {
                        dt_columns.resize_with(col + 1, DateTimeColumn::default);
                    }
                    match dt_columns.get_mut(col) {
                        Some(b) => b.build(py, dt)?,
                        None => cell_to_py(py, c, &mut tz)?,
                    }
                }
                other => cell_to_py(py, other, &mut tz)?,
            });
        }
        rows.push(PyTuple::new(py, vals.drain(..))?);
    }
    PyList::new(py, rows)
}

thread_local! {
    /// Reused JSON buffers: no fresh allocation (and page faults) per call.
    static SCRATCH: std::cell::RefCell<json::JsonScratch> = std::cell::RefCell::new(json::JsonScratch::default());
}
const SCRATCH_KEEP: usize = 64 << 20;

#[pyfunction]
#[pyo3(signature = (data, *, clock_column, columns, status_column=None, capture_period=None))]
fn profile_to_json<'py>(
    py: Python<'py>,
    data: &[u8],
    clock_column: usize,
    columns: Vec<ColumnSpec>,
    status_column: Option<usize>,
    capture_period: Option<u32>,
) -> PyResult<Bound<'py, PyBytes>> {
    let cols: Vec<CoreColumn> = columns
        .into_iter()
        .map(|c| CoreColumn {
            index: c.index,
            reading_type: c.reading_type,
            obis: c.obis,
            unit: c.unit,
            scaler: c.scaler,
        })
        .collect();
    SCRATCH.with(|cell| {
        // a finalizer running during PyBytes::new could re-enter: fall back to a fresh buffer
        let mut fresh = json::JsonScratch::default();
        let mut guard = cell.try_borrow_mut().ok();
        let scratch = match guard.as_deref_mut() {
            Some(s) => s,
            None => &mut fresh,
        };
        py.detach(|| json::profile_to_json_with(scratch, data, clock_column, &cols, status_column, capture_period))
            .map_err(to_py_err)?;
        let out = PyBytes::new(py, scratch.json());
        if scratch.capacity() > SCRATCH_KEEP {
            // do not keep a huge buffer alive after an unusually large profile
            *scratch = json::JsonScratch::default();
        }
        Ok(out)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ColumnSpec>()?;
    m.add_function(wrap_pyfunction!(decode_profile_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(profile_to_json, m)?)?;
    Ok(())
}
