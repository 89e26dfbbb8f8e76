//! The xDLMS error APDUs: ExceptionResponse (0xD8: state-error and
//! service-error) and ConfirmedServiceError (0x0E: the failed service and a
//! ServiceError class with its value, e.g. an initiate refusal in an AARE).

use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

pub const TAG_EXCEPTION_RESPONSE: u8 = 0xd8;
pub const TAG_CONFIRMED_SERVICE_ERROR: u8 = 0x0e;

/// state-error names (ExceptionResponse).
pub const STATE_ERRORS: &[(u8, &str)] = &[(1, "service-not-allowed"), (2, "service-unknown")];

/// service-error alternatives (ExceptionResponse); 6 carries an invocation counter.
pub const SERVICE_ERRORS: &[(u8, &str)] = &[
    (1, "operation-not-possible"),
    (2, "service-not-supported"),
    (3, "other-reason"),
    (4, "pdu-too-long"),
    (5, "deciphering-error"),
    (6, "invocation-counter-error"),
];

/// ConfirmedServiceError alternatives: the service that failed.
pub const CONFIRMED_SERVICES: &[(u8, &str)] = &[
    (1, "initiate-error"),
    (2, "get-status"),
    (3, "get-name-list"),
    (4, "get-variable-attribute"),
    (5, "read"),
    (6, "write"),
    (7, "get-data-set-attribute"),
    (8, "get-ti-attribute"),
    (9, "change-scope"),
    (10, "start"),
    (11, "stop"),
    (12, "resume"),
    (13, "make-usable"),
    (14, "initiate-load"),
    (15, "load-segment"),
    (16, "terminate-load"),
    (17, "initiate-up-load"),
    (18, "up-load-segment"),
    (19, "terminate-up-load"),
];

/// ServiceError alternatives: the class of the error.
pub const SERVICE_ERROR_CLASSES: &[(u8, &str)] = &[
    (0, "application-reference"),
    (1, "hardware-resource"),
    (2, "vde-state-error"),
    (3, "service"),
    (4, "definition"),
    (5, "access"),
    (6, "initiate"),
    (7, "load-data-set"),
    (8, "change-scope"),
    (9, "task"),
    (10, "other"),
];

/// Values of the `initiate` class (the one an AARE usually carries).
pub const INITIATE_ERRORS: &[(u8, &str)] = &[
    (0, "other"),
    (1, "dlms-version-too-low"),
    (2, "incompatible-conformance"),
    (3, "pdu-size-too-short"),
    (4, "refused-by-the-vde-handler"),
];

/// ExceptionResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionResponse {
    pub state_error: u8,
    pub service_error: u8,
    /// Present exactly when `service_error` is 6 (invocation-counter-error).
    pub invocation_counter: Option<u32>,
}

impl ExceptionResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let state_error = r.u8("state-error")?;
        let at = r.pos();
        let service_error = r.u8("service-error")?;
        if !(1..=6).contains(&service_error) {
            return Err(Error::new(Layer::Apdu, "service-error", at, ErrorKind::UnknownTag(service_error)));
        }
        let invocation_counter = if service_error == 6 { Some(r.u32("invocation-counter")?) } else { None };
        Ok(ExceptionResponse { state_error, service_error, invocation_counter })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[TAG_EXCEPTION_RESPONSE, self.state_error, self.service_error]);
        if self.service_error == 6 {
            out.extend_from_slice(&self.invocation_counter.unwrap_or(0).to_be_bytes());
        }
    }
}

/// ConfirmedServiceError: `service` (1..=19), the ServiceError class (0..=10) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedServiceError {
    pub service: u8,
    pub error: u8,
    pub value: u8,
}

impl ConfirmedServiceError {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        let service = r.u8("confirmed-service-error")?;
        if !(1..=19).contains(&service) {
            return Err(Error::new(Layer::Apdu, "confirmed-service-error", at, ErrorKind::UnknownTag(service)));
        }
        let at = r.pos();
        let error = r.u8("service-error")?;
        if error > 10 {
            return Err(Error::new(Layer::Apdu, "service-error", at, ErrorKind::UnknownTag(error)));
        }
        let value = r.u8("service-error value")?;
        Ok(ConfirmedServiceError { service, error, value })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[TAG_CONFIRMED_SERVICE_ERROR, self.service, self.error, self.value]);
    }
}
