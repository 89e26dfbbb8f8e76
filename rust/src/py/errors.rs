//! Core errors as Python exceptions: one class per layer under `DlmsError`
//! (a `ValueError`), each instance carrying `layer`, `field` and `offset`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{Error, ErrorKind, Layer};

create_exception!(_core, DlmsError, PyValueError, "A DLMS/COSEM input was rejected by the core.");
create_exception!(_core, HdlcError, DlmsError, "An HDLC frame was rejected.");
create_exception!(_core, WrapperError, DlmsError, "A wrapper (IEC 62056-47) frame was rejected.");
create_exception!(_core, AxdrError, DlmsError, "An A-XDR value was rejected.");
create_exception!(_core, ApduError, DlmsError, "An xDLMS/ACSE APDU was rejected.");
create_exception!(_core, SecurityError, DlmsError, "Ciphering or authentication failed.");
create_exception!(_core, ProfileError, DlmsError, "A profile buffer was rejected.");
create_exception!(
    _core,
    AuthenticationError,
    SecurityError,
    "An authentication tag did not match: wrong key, or tampered data."
);

/// Map a core error to the Python exception of its layer.
pub fn to_py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    let err = match (e.layer, &e.kind) {
        (_, ErrorKind::AuthenticationFailed) => AuthenticationError::new_err(msg),
        (Layer::Hdlc, _) => HdlcError::new_err(msg),
        (Layer::Wrapper, _) => WrapperError::new_err(msg),
        (Layer::Axdr, _) => AxdrError::new_err(msg),
        (Layer::Apdu | Layer::Ber, _) => ApduError::new_err(msg),
        (Layer::Security, _) => SecurityError::new_err(msg),
        (Layer::Profile, _) => ProfileError::new_err(msg),
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("layer", e.layer.name());
        let _ = v.setattr("field", e.field);
        let _ = v.setattr("offset", e.offset);
    });
    err
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DlmsError", py.get_type::<DlmsError>())?;
    m.add("HdlcError", py.get_type::<HdlcError>())?;
    m.add("WrapperError", py.get_type::<WrapperError>())?;
    m.add("AxdrError", py.get_type::<AxdrError>())?;
    m.add("ApduError", py.get_type::<ApduError>())?;
    m.add("SecurityError", py.get_type::<SecurityError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("ProfileError", py.get_type::<ProfileError>())?;
    Ok(())
}
