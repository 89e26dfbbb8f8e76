//! Python face of the unsolicited APDUs a push listener reads and a meter
//! sends: `DataNotification` (frozen: decode / encode) and `ciphering_sender`
//! (the system title a general-ciphering APDU names). Conversion only.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

use super::to_py_err;
use crate::apdu::{self, Apdu};
use crate::error::{Error, Layer};

/// A data-notification (0x0F): long-invoke-id-and-priority, the optional
/// date-time (12 COSEM bytes, None when absent) and the body (one raw A-XDR value).
#[pyclass(name = "DataNotification", module = "smmc_gateway._core", frozen)]
pub struct PyDataNotification {
    inner: apdu::DataNotification,
}

#[pymethods]
impl PyDataNotification {
    #[new]
    #[pyo3(signature = (long_invoke_id, date_time, body))]
    fn new(long_invoke_id: u32, date_time: Option<&[u8]>, body: &[u8]) -> PyResult<Self> {
        crate::axdr::decode(body).map_err(to_py_err)?;
        let date_time = date_time.map(<[u8]>::to_vec).unwrap_or_default();
        Ok(PyDataNotification {
            inner: apdu::DataNotification {
                long_invoke_id_and_priority: long_invoke_id,
                date_time,
                body: body.to_vec(),
            },
        })
    }

    /// The data-notification in ``apdu`` (an ``ApduError`` names what else it is).
    #[classmethod]
    fn decode(_cls: &Bound<'_, PyType>, apdu: &[u8]) -> PyResult<Self> {
        match apdu::decode(apdu).map_err(to_py_err)? {
            Apdu::DataNotification(inner) => Ok(PyDataNotification { inner }),
            other => Err(to_py_err(Error::invalid(Layer::Apdu, "APDU", 0, other.kind(), "a data-notification"))),
        }
    }

    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &Apdu::DataNotification(self.inner.clone()).encode())
    }

    #[getter]
    fn long_invoke_id(&self) -> u32 {
        self.inner.long_invoke_id_and_priority
    }

    #[getter]
    fn date_time<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        (!self.inner.date_time.is_empty()).then(|| PyBytes::new(py, &self.inner.date_time))
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }
}

/// The sender's system title of a general-glo- or general-ded-ciphering APDU.
#[pyfunction]
fn ciphering_sender<'py>(py: Python<'py>, apdu: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    match apdu::decode(apdu).map_err(to_py_err)? {
        Apdu::GeneralCiphering(g) => Ok(PyBytes::new(py, &g.system_title)),
        other => Err(to_py_err(Error::invalid(Layer::Apdu, "APDU", 0, other.kind(), "a general-ciphering APDU"))),
    }
}

/// A data-notification whose body items carry untagged attribute descriptors
/// (quirk `untagged-attribute-descriptors`): (long-invoke-id, date-time or
/// None, body as a typed value with each descriptor as a structure, the number
/// of descriptors read: 0 when the body was plain A-XDR).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn decode_data_notification_untagged<'py>(
    py: Python<'py>,
    apdu: &[u8],
) -> PyResult<(u32, Option<Bound<'py, PyBytes>>, Bound<'py, PyDict>, usize)> {
    let (id, date_time, body, found) = apdu::decode_data_notification_untagged(apdu).map_err(to_py_err)?;
    let stamp = (!date_time.is_empty()).then(|| PyBytes::new(py, &date_time));
    Ok((id, stamp, super::axdr::data_to_typed(py, &body)?, found))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDataNotification>()?;
    m.add_function(wrap_pyfunction!(decode_data_notification_untagged, m)?)?;
    m.add_function(wrap_pyfunction!(ciphering_sender, m)?)?;
    Ok(())
}
