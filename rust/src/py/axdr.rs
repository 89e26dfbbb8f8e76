//! A-XDR for Python: `decode`/`encode` between bytes and the typed JSON tree
//! of CLI.md (`{"type": "long-unsigned", "value": 5}`), and
//! `decode_datetime`/`encode_datetime` for COSEM date-times. Conversion
//! only; the codecs are `crate::axdr` and `crate::cosem_datetime`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDelta, PyDict, PyList, PyString, PyTzInfo};

mod typed;

use super::errors::AxdrError;
use super::to_py_err;
use crate::axdr::{self, Data, TypeDesc};
use crate::cosem_datetime::{CosemDate, CosemDateTime, CosemTime};
use crate::error::{Error, Layer};

// ------------------------------------------------------------ date-times

/// A `datetime.timezone` for a COSEM deviation (UTC = local + deviation).
pub(crate) fn tz_for<'py>(py: Python<'py>, deviation: i16) -> PyResult<Bound<'py, PyTzInfo>> {
    let delta = PyDelta::new(py, 0, -(deviation as i32) * 60, 0, true)?;
    PyTzInfo::fixed_offset(py, delta)
}

/// A concrete COSEM date-time as a Python `datetime` (aware when the deviation
/// is specified); `None` when not concrete. `tz` is a one-entry cache.
pub(crate) fn datetime_to_py<'py>(
    py: Python<'py>,
    dt: &CosemDateTime,
    tz: &mut Option<(i16, Bound<'py, PyTzInfo>)>,
) -> PyResult<Option<Bound<'py, PyDateTime>>> {
    if !dt.is_concrete() {
        return Ok(None);
    }
    let tzinfo = match dt.deviation() {
        None => None,
        Some(dev) => {
            if tz.as_ref().map(|(d, _)| *d) != Some(dev) {
                *tz = Some((dev, tz_for(py, dev)?));
            }
            tz.as_ref().map(|(_, t)| t)
        }
    };
    let micro = if dt.hundredths == 0xFF { 0 } else { dt.hundredths as u32 * 10_000 };
    PyDateTime::new(py, dt.year as i32, dt.month, dt.day, dt.hour, dt.minute, dt.second_or_zero(), micro, tzinfo)
        .map(Some)
        .map_err(|e| {
            AxdrError::new_err(format!("A-XDR: date-time: year {} is outside Python's datetime range ({e})", dt.year))
        })
}

#[pyfunction]
fn decode_datetime<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyDateTime>>> {
    let dt = CosemDateTime::from_slice(data).map_err(to_py_err)?;
    datetime_to_py(py, &dt, &mut None)
}

fn attr_u32(v: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    v.getattr(name)?.extract()
}

#[pyfunction]
#[pyo3(signature = (value, *, clock_status=None, deviation=None))]
fn encode_datetime<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    clock_status: Option<u8>,
    deviation: Option<i16>,
) -> PyResult<Bound<'py, PyBytes>> {
    if !value.is_instance_of::<PyDateTime>() {
        return Err(PyTypeError::new_err("encode_datetime: expected a datetime.datetime"));
    }
    let offset = value.call_method0("utcoffset")?;
    let dev = match (deviation, offset.is_none()) {
        (Some(d), _) => Some(d),
        (None, true) => None,
        (None, false) => {
            let secs: f64 = offset.call_method0("total_seconds")?.extract()?;
            if secs % 60.0 != 0.0 {
                return Err(AxdrError::new_err(format!(
                    "A-XDR: date-time deviation: UTC offset {secs} s is not a whole number of minutes"
                )));
            }
            Some(-(secs / 60.0) as i16)
        }
    };
    let year = u16::try_from(attr_u32(value, "year")?)
        .map_err(|_| AxdrError::new_err("A-XDR: date-time year: out of range"))?;
    let dt = CosemDateTime::from_components(
        year,
        attr_u32(value, "month")? as u8,
        attr_u32(value, "day")? as u8,
        attr_u32(value, "hour")? as u8,
        attr_u32(value, "minute")? as u8,
        attr_u32(value, "second")? as u8,
        Some((attr_u32(value, "microsecond")? / 10_000) as u8),
        dev,
        clock_status,
    )
    .map_err(to_py_err)?;
    Ok(PyBytes::new(py, &dt.to_bytes()))
}

/// A date-time field by field, `None` where the field is "not specified"
/// (0xFF, year 0xFFFF, deviation 0x8000); special values (month/day 0xFD,
/// 0xFE) are kept as they are.
type Fields = (
    Option<u16>,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<i16>,
    Option<u8>,
);

fn specified(v: u8) -> Option<u8> {
    (v != crate::cosem_datetime::NS).then_some(v)
}

/// 12 bytes to their fields, every field validated (errors name the field and its offset).
#[pyfunction]
fn decode_datetime_fields(data: &[u8]) -> PyResult<Fields> {
    let dt = CosemDateTime::from_slice(data).map_err(to_py_err)?;
    Ok((
        (dt.year != 0xFFFF).then_some(dt.year),
        specified(dt.month),
        specified(dt.day),
        specified(dt.weekday),
        specified(dt.hour),
        specified(dt.minute),
        specified(dt.second),
        specified(dt.hundredths),
        dt.deviation(),
        dt.clock_status(),
    ))
}

/// One field to its byte: `None` is "not specified" (0xFF, which may also be
/// given as such); out of range names the field.
fn byte(v: Option<i64>, field: &'static str, offset: usize) -> PyResult<u8> {
    match v {
        None => Ok(crate::cosem_datetime::NS),
        Some(x) => {
            u8::try_from(x).map_err(|_| to_py_err(Error::invalid(Layer::Axdr, field, offset, x, "0..255 or None")))
        }
    }
}

/// The fields (as [`decode_datetime_fields`] returns them) to 12 bytes,
/// validated exactly as a decode validates them.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn encode_datetime_fields<'py>(
    py: Python<'py>,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    weekday: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    hundredths: Option<i64>,
    deviation: Option<i64>,
    clock_status: Option<i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let year = match year {
        None => 0xFFFF,
        Some(y) => u16::try_from(y)
            .ok()
            .filter(|y| *y != 0xFFFF)
            .ok_or_else(|| to_py_err(Error::invalid(Layer::Axdr, "date-time year", 0, y, "0..65534 or None")))?,
    };
    let deviation = match deviation {
        None => crate::cosem_datetime::DEVIATION_NOT_SPECIFIED,
        Some(d) if (-720..=720).contains(&d) => d as i16,
        Some(d) => {
            return Err(to_py_err(Error::invalid(Layer::Axdr, "date-time deviation", 9, d, "-720..720 or None")));
        }
    };
    let dt = CosemDateTime {
        year,
        month: byte(month, "date-time month", 2)?,
        day: byte(day, "date-time day of month", 3)?,
        weekday: byte(weekday, "date-time day of week", 4)?,
        hour: byte(hour, "date-time hour", 5)?,
        minute: byte(minute, "date-time minute", 6)?,
        second: byte(second, "date-time second", 7)?,
        hundredths: byte(hundredths, "date-time hundredths", 8)?,
        deviation,
        clock_status: byte(clock_status, "date-time clock status", 11)?,
    };
    let bytes = dt.to_bytes();
    CosemDateTime::from_bytes(&bytes).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// The clock status bits the Blue Book defines: `(bit, name)`.
#[pyfunction]
fn clock_status_bits() -> Vec<(u8, &'static str)> {
    crate::cosem_datetime::status::NAMES.to_vec()
}

/// A COSEM date (5 bytes) field by field: `(year, month, day, weekday)`, `None` where not specified.
type DateFields = (Option<u16>, Option<u8>, Option<u8>, Option<u8>);
/// A COSEM time (4 bytes) field by field: `(hour, minute, second, hundredths)`.
type TimeFields = (Option<u8>, Option<u8>, Option<u8>, Option<u8>);

fn fixed<const N: usize>(data: &[u8], field: &'static str, expected: &'static str) -> PyResult<[u8; N]> {
    data.try_into()
        .map_err(|_| to_py_err(Error::invalid(Layer::Axdr, field, 0, format!("{} bytes", data.len()), expected)))
}

/// 5 bytes of a COSEM date to their fields, validated (errors name the field).
#[pyfunction]
fn decode_date_fields(data: &[u8]) -> PyResult<DateFields> {
    let d = CosemDate::from_bytes(&fixed::<5>(data, "date", "exactly 5 bytes")?).map_err(to_py_err)?.0;
    let year = u16::from_be_bytes([d[0], d[1]]);
    Ok(((year != 0xFFFF).then_some(year), specified(d[2]), specified(d[3]), specified(d[4])))
}

/// A COSEM date's fields to 5 bytes, validated as a decode validates them.
#[pyfunction]
fn encode_date_fields<'py>(
    py: Python<'py>,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    weekday: Option<i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let year = match year {
        None => 0xFFFF,
        Some(y) => u16::try_from(y)
            .ok()
            .filter(|y| *y != 0xFFFF)
            .ok_or_else(|| to_py_err(Error::invalid(Layer::Axdr, "date year", 0, y, "0..65534 or None")))?,
    };
    let y = year.to_be_bytes();
    let b = [
        y[0],
        y[1],
        byte(month, "date month", 2)?,
        byte(day, "date day of month", 3)?,
        byte(weekday, "date day of week", 4)?,
    ];
    CosemDate::from_bytes(&b).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &b))
}

/// 4 bytes of a COSEM time to their fields, validated (errors name the field).
#[pyfunction]
fn decode_time_fields(data: &[u8]) -> PyResult<TimeFields> {
    let t = CosemTime::from_bytes(&fixed::<4>(data, "time", "exactly 4 bytes")?).map_err(to_py_err)?.0;
    Ok((specified(t[0]), specified(t[1]), specified(t[2]), specified(t[3])))
}

/// A COSEM time's fields to 4 bytes, validated as a decode validates them.
#[pyfunction]
fn encode_time_fields<'py>(
    py: Python<'py>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    hundredths: Option<i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let b = [
        byte(hour, "time hour", 0)?,
        byte(minute, "time minute", 1)?,
        byte(second, "time second", 2)?,
        byte(hundredths, "time hundredths", 3)?,
    ];
    CosemTime::from_bytes(&b).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &b))
}

// ------------------------------------------------------------ Data -> typed JSON

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

fn desc_to_py<'py>(py: Python<'py>, d: &TypeDesc) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        TypeDesc::Simple(t) => PyString::new(py, axdr::type_name(*t).unwrap_or("unknown")).into_any(),
        TypeDesc::Array { count, element } => PyList::new(
            py,
            [PyString::new(py, "array").into_any(), count.into_pyobject(py)?.into_any(), desc_to_py(py, element)?],
        )?
        .into_any(),
        TypeDesc::Structure(fields) => {
            let items = fields.iter().map(|f| desc_to_py(py, f)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, [PyString::new(py, "structure").into_any(), PyList::new(py, items)?.into_any()])?.into_any()
        }
    })
}

/// Latin-1 text of a visible-string (lossless for every byte).
fn latin1(b: &[u8]) -> String {
    b.iter().map(|c| *c as char).collect()
}

pub(crate) fn data_to_typed<'py>(py: Python<'py>, d: &Data) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("type", d.type_name())?;
    let set_dt = |out: &Bound<'py, PyDict>, b: &[u8]| -> PyResult<()> {
        if let Some(iso) = CosemDateTime::from_slice(b).ok().and_then(|dt| dt.to_iso()) {
            out.set_item("datetime", iso)?;
        }
        Ok(())
    };
    match d {
        Data::Null | Data::DontCare => out.set_item("value", py.None())?,
        Data::Array(items) | Data::Structure(items) => {
            let v = items.iter().map(|i| data_to_typed(py, i)).collect::<PyResult<Vec<_>>>()?;
            out.set_item("value", PyList::new(py, v)?)?
        }
        Data::Boolean(b) => out.set_item("value", *b)?,
        Data::BitString { bits, bytes } => {
            out.set_item("value", hex(bytes))?;
            if *bits != bytes.len() * 8 {
                out.set_item("bits", *bits)?;
            }
        }
        Data::DoubleLong(v) => out.set_item("value", *v)?,
        Data::DoubleLongUnsigned(v) => out.set_item("value", *v)?,
        Data::OctetString(b) => {
            out.set_item("value", hex(b))?;
            if b.len() == 12 {
                set_dt(&out, b)?;
            }
        }
        Data::VisibleString(b) => out.set_item("value", latin1(b))?,
        Data::Utf8String(b) => match std::str::from_utf8(b) {
            Ok(s) => out.set_item("value", s)?,
            Err(e) => return Err(AxdrError::new_err(format!("A-XDR: utf8-string: invalid UTF-8 ({e})"))),
        },
        Data::Bcd(v) | Data::Integer(v) => out.set_item("value", *v)?,
        Data::Long(v) => out.set_item("value", *v)?,
        Data::Unsigned(v) | Data::Enum(v) => out.set_item("value", *v)?,
        Data::LongUnsigned(v) => out.set_item("value", *v)?,
        Data::CompactArray { description, elements } => {
            out.set_item("description", desc_to_py(py, description)?)?;
            let v = elements.iter().map(|i| data_to_typed(py, i)).collect::<PyResult<Vec<_>>>()?;
            out.set_item("value", PyList::new(py, v)?)?
        }
        Data::Long64(v) => out.set_item("value", *v)?,
        Data::Long64Unsigned(v) => out.set_item("value", *v)?,
        Data::Float32(v) => out.set_item("value", *v as f64)?,
        Data::Float64(v) => out.set_item("value", *v)?,
        Data::DateTime(b) => {
            out.set_item("value", hex(b))?;
            set_dt(&out, b)?;
        }
        Data::Date(b) => out.set_item("value", hex(b))?,
        Data::Time(b) => out.set_item("value", hex(b))?,
    }
    Ok(out)
}

#[pyfunction]
fn decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let d = axdr::decode(data).map_err(to_py_err)?;
    data_to_typed(py, &d)
}

#[pyfunction]
fn encode<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let d = typed::typed_to_data(value, "value")?;
    Ok(PyBytes::new(py, &d.encode()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(decode_datetime, m)?)?;
    m.add_function(wrap_pyfunction!(encode_datetime, m)?)?;
    m.add_function(wrap_pyfunction!(decode_datetime_fields, m)?)?;
    m.add_function(wrap_pyfunction!(encode_datetime_fields, m)?)?;
    m.add_function(wrap_pyfunction!(decode_date_fields, m)?)?;
    m.add_function(wrap_pyfunction!(clock_status_bits, m)?)?;
    m.add_function(wrap_pyfunction!(encode_date_fields, m)?)?;
    m.add_function(wrap_pyfunction!(decode_time_fields, m)?)?;
    m.add_function(wrap_pyfunction!(encode_time_fields, m)?)?;
    Ok(())
}
