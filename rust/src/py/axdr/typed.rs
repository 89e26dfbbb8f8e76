//! The typed JSON tree (Python dicts/lists) to `Data`, with errors that name
//! the path into the tree, e.g. `value[2].value[0]: long-unsigned out of range 70000`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::axdr::{self, tag, Data, TypeDesc};
use crate::py::errors::AxdrError;

fn err(path: &str, msg: impl std::fmt::Display) -> PyErr {
    let e = AxdrError::new_err(format!("{path}: {msg}"));
    Python::attach(|py| {
        let v = e.value(py);
        let _ = v.setattr("layer", "A-XDR");
        let _ = v.setattr("field", path);
        let _ = v.setattr("offset", 0);
    });
    e
}

fn child(path: &str, i: usize) -> String {
    if path == "value" {
        format!("value[{i}]")
    } else {
        format!("{path}.value[{i}]")
    }
}

fn int_in<T: TryFrom<i128>>(v: &Bound<'_, PyAny>, path: &str, ty: &str) -> PyResult<T> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(err(path, format!("{ty} expects an integer, got {}", type_of(v))));
    }
    let n: i128 = v.extract().map_err(|_| err(path, format!("{ty} out of range {v}")))?;
    T::try_from(n).map_err(|_| err(path, format!("{ty} out of range {n}")))
}

fn type_of(v: &Bound<'_, PyAny>) -> String {
    v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

fn float_of(v: &Bound<'_, PyAny>, path: &str, ty: &str) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>() || !(v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>()) {
        return Err(err(path, format!("{ty} expects a number, got {}", type_of(v))));
    }
    v.extract().map_err(|_| err(path, format!("{ty}: not a number")))
}

fn hex_of(v: &Bound<'_, PyAny>, path: &str, ty: &str) -> PyResult<Vec<u8>> {
    let s: String = v.extract().map_err(|_| err(path, format!("{ty} expects a hex string, got {}", type_of(v))))?;
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(err(path, format!("{ty}: odd number of hex digits in {s:?}")));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| match p {
            [h, l] => digit(*h).zip(digit(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| err(path, format!("{ty}: not hex: {s:?}")))
}

fn fixed<const N: usize>(v: &Bound<'_, PyAny>, path: &str, ty: &str) -> PyResult<[u8; N]> {
    let b = hex_of(v, path, ty)?;
    let n = b.len();
    b.try_into().map_err(|_| err(path, format!("{ty} needs exactly {N} bytes, got {n}")))
}

fn items_of<'py>(v: &Bound<'py, PyAny>, path: &str, ty: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let l = v.cast::<PyList>().map_err(|_| err(path, format!("{ty} expects a list, got {}", type_of(v))))?;
    Ok(l.iter().collect())
}

/// A typed value tree to `Data`.
pub fn typed_to_data(node: &Bound<'_, PyAny>, path: &str) -> PyResult<Data> {
    let d =
        node.cast::<PyDict>().map_err(|_| err(path, format!("expected a typed value dict, got {}", type_of(node))))?;
    let ty_obj = d.get_item("type")?.ok_or_else(|| err(path, "missing key \"type\""))?;
    let ty: String = ty_obj.extract().map_err(|_| err(path, "\"type\" must be a string"))?;
    let value = d.get_item("value")?.ok_or_else(|| err(path, format!("{ty}: missing key \"value\"")))?;
    let v = &value;
    let t = axdr::tag_of(&ty).ok_or_else(|| err(path, format!("unknown type {ty:?}")))?;
    Ok(match t {
        tag::NULL_DATA | tag::DONT_CARE => {
            if !v.is_none() {
                return Err(err(path, format!("{ty} expects value null")));
            }
            if t == tag::NULL_DATA {
                Data::Null
            } else {
                Data::DontCare
            }
        }
        tag::ARRAY | tag::STRUCTURE => {
            let items = items_of(v, path, &ty)?
                .iter()
                .enumerate()
                .map(|(i, x)| typed_to_data(x, &child(path, i)))
                .collect::<PyResult<Vec<_>>>()?;
            if t == tag::ARRAY {
                Data::Array(items)
            } else {
                Data::Structure(items)
            }
        }
        tag::BOOLEAN => Data::Boolean(
            v.cast::<PyBool>()
                .map_err(|_| err(path, format!("boolean expects true/false, got {}", type_of(v))))?
                .is_true(),
        ),
        tag::BIT_STRING => {
            let bytes = hex_of(v, path, &ty)?;
            let bits = match d.get_item("bits")? {
                None => bytes.len() * 8,
                Some(b) => int_in::<usize>(&b, path, "bit-string bits")?,
            };
            if bits.div_ceil(8) != bytes.len() {
                return Err(err(
                    path,
                    format!("bit-string: {bits} bits need {} bytes, got {}", bits.div_ceil(8), bytes.len()),
                ));
            }
            Data::BitString { bits, bytes }
        }
        tag::DOUBLE_LONG => Data::DoubleLong(int_in(v, path, &ty)?),
        tag::DOUBLE_LONG_UNSIGNED => Data::DoubleLongUnsigned(int_in(v, path, &ty)?),
        tag::OCTET_STRING => Data::OctetString(hex_of(v, path, &ty)?),
        tag::VISIBLE_STRING => {
            let s = v
                .cast::<PyString>()
                .map_err(|_| err(path, format!("visible-string expects a string, got {}", type_of(v))))?;
            let s = s.to_str()?;
            let b = s.chars().map(|c| u8::try_from(c as u32).ok()).collect::<Option<Vec<u8>>>();
            Data::VisibleString(
                b.ok_or_else(|| err(path, format!("visible-string: character outside Latin-1 in {s:?}")))?,
            )
        }
        tag::UTF8_STRING => {
            let s = v
                .cast::<PyString>()
                .map_err(|_| err(path, format!("utf8-string expects a string, got {}", type_of(v))))?;
            Data::Utf8String(s.to_str()?.as_bytes().to_vec())
        }
        tag::BCD => Data::Bcd(int_in(v, path, &ty)?),
        tag::INTEGER => Data::Integer(int_in(v, path, &ty)?),
        tag::LONG => Data::Long(int_in(v, path, &ty)?),
        tag::UNSIGNED => Data::Unsigned(int_in(v, path, &ty)?),
        tag::LONG_UNSIGNED => Data::LongUnsigned(int_in(v, path, &ty)?),
        tag::LONG64 => Data::Long64(int_in(v, path, &ty)?),
        tag::LONG64_UNSIGNED => Data::Long64Unsigned(int_in(v, path, &ty)?),
        tag::ENUM => Data::Enum(int_in(v, path, &ty)?),
        tag::FLOAT32 => {
            let f = float_of(v, path, &ty)?;
            if f.is_finite() && f.abs() > f32::MAX as f64 {
                return Err(err(path, format!("float32 out of range {f}")));
            }
            Data::Float32(f as f32)
        }
        tag::FLOAT64 => Data::Float64(float_of(v, path, &ty)?),
        tag::DATE_TIME => Data::DateTime(fixed::<12>(v, path, &ty)?),
        tag::DATE => Data::Date(fixed::<5>(v, path, &ty)?),
        tag::TIME => Data::Time(fixed::<4>(v, path, &ty)?),
        tag::COMPACT_ARRAY => {
            let desc_obj =
                d.get_item("description")?.ok_or_else(|| err(path, "compact-array: missing key \"description\""))?;
            let description = desc_from_py(&desc_obj, &format!("{path}.description"))?;
            let mut elements = Vec::new();
            for (i, x) in items_of(v, path, &ty)?.iter().enumerate() {
                let p = child(path, i);
                let e = typed_to_data(x, &p)?;
                if let Some(why) = mismatch(&e, &description) {
                    return Err(err(&p, format!("does not match the compact-array description: {why}")));
                }
                let mut probe = Vec::new();
                e.encode_body(&mut probe);
                if probe.is_empty() {
                    return Err(err(&p, "compact-array elements of zero size cannot be encoded"));
                }
                elements.push(e);
            }
            Data::CompactArray { description, elements }
        }
        other => return Err(err(path, format!("unsupported type tag {other}"))),
    })
}

/// A compact-array description: a type name, `["array", n, desc]` or `["structure", [desc, ...]]`.
fn desc_from_py(v: &Bound<'_, PyAny>, path: &str) -> PyResult<TypeDesc> {
    if let Ok(name) = v.extract::<String>() {
        return match axdr::tag_of(&name) {
            Some(t) if t != tag::ARRAY && t != tag::STRUCTURE && t != tag::COMPACT_ARRAY => Ok(TypeDesc::Simple(t)),
            _ => Err(err(path, format!("{name:?} is not a simple type name"))),
        };
    }
    let items = items_of(v, path, "type description")?;
    let kind: String = items.first().and_then(|k| k.extract().ok()).unwrap_or_default();
    match (kind.as_str(), items.as_slice()) {
        ("array", [_, n, e]) => Ok(TypeDesc::Array {
            count: int_in(n, &format!("{path}[1]"), "array count")?,
            element: Box::new(desc_from_py(e, &format!("{path}[2]"))?),
        }),
        ("structure", [_, fields]) => {
            let fs = items_of(fields, &format!("{path}[1]"), "structure fields")?;
            Ok(TypeDesc::Structure(
                fs.iter()
                    .enumerate()
                    .map(|(i, f)| desc_from_py(f, &format!("{path}[1][{i}]")))
                    .collect::<PyResult<_>>()?,
            ))
        }
        _ => Err(err(path, "expected a type name, [\"array\", n, desc] or [\"structure\", [desc, ...]]")),
    }
}

/// Why `d` does not fit `desc`, if it does not.
fn mismatch(d: &Data, desc: &TypeDesc) -> Option<String> {
    match (desc, d) {
        (TypeDesc::Simple(t), d) if d.tag() == *t => None,
        (TypeDesc::Array { count, element }, Data::Array(items)) => {
            if items.len() != *count as usize {
                return Some(format!("array of {} elements, description says {count}", items.len()));
            }
            items.iter().find_map(|i| mismatch(i, element))
        }
        (TypeDesc::Structure(fields), Data::Structure(items)) => {
            if items.len() != fields.len() {
                return Some(format!("structure of {} elements, description says {}", items.len(), fields.len()));
            }
            items.iter().zip(fields).find_map(|(i, f)| mismatch(i, f))
        }
        (TypeDesc::Simple(t), d) => {
            Some(format!("{} where {} expected", d.type_name(), axdr::type_name(*t).unwrap_or("?")))
        }
        (TypeDesc::Array { .. }, d) => Some(format!("{} where array expected", d.type_name())),
        (TypeDesc::Structure(_), d) => Some(format!("{} where structure expected", d.type_name())),
    }
}
