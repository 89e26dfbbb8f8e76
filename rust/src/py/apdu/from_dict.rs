//! The Python dict documented in `_core.pyi` to an `Apdu` (conversion and
//! validation of keys and values only).

use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::{bad, Table};
use crate::apdu::{
    self, association as acse, ciphered, errors as xerr, initiate, results, AttributeDescriptor,
    AttributeWithSelection, BlockResult, DataBlockSa, GetDataResult, MethodDescriptor, SelectiveAccess,
};
use crate::apdu::{
    Aare, Aarq, ActionRequest, ActionResponse, ActionResult, Apdu, Ciphered, ConfirmedServiceError, DataNotification,
    Diagnostic, EventNotification, ExceptionResponse, GeneralBlockTransfer, GeneralCiphering, GetRequest, GetResponse,
    InitiateRequest, InitiateResponse, Release, SetRequest, SetResponse,
};
use crate::error::{Error, ErrorKind, Layer};
use crate::py::to_py_err;

fn from_name_or_int(v: &Bound<'_, PyAny>, table: Table, field: &'static str, expected: &'static str) -> PyResult<i64> {
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_str()?;
        return results::value_of(table, s).map(i64::from).ok_or_else(|| bad(field, format!("{s:?}"), expected));
    }
    v.extract::<i64>().map_err(|_| bad(field, v.to_string(), expected))
}

pub(super) fn get<'py>(d: &Bound<'py, PyDict>, key: &'static str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?.ok_or_else(|| to_py_err(Error::new(Layer::Apdu, key, 0, ErrorKind::Other("missing key".into()))))
}

pub(super) fn opt<'py>(d: &Bound<'py, PyDict>, key: &'static str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(d.get_item(key)?.filter(|v| !v.is_none()))
}

fn ext<'py, T: FromPyObjectOwned<'py>>(v: &Bound<'py, PyAny>, key: &'static str) -> PyResult<T> {
    v.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        to_py_err(Error::new(Layer::Apdu, key, 0, ErrorKind::Other(format!("bad value {v}: {e}"))))
    })
}

pub(super) fn req<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &'static str) -> PyResult<T> {
    ext(&get(d, key)?, key)
}

fn opt_ext<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &'static str) -> PyResult<Option<T>> {
    opt(d, key)?.map(|v| ext(&v, key)).transpose()
}

pub(super) fn bytes_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<Vec<u8>> {
    match v.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes().to_vec()),
        Err(_) => match v.extract::<Vec<u8>>() {
            Ok(b) if !v.is_instance_of::<PyString>() => Ok(b),
            _ => Err(bad(key, v.to_string(), "bytes")),
        },
    }
}

fn req_bytes(d: &Bound<'_, PyDict>, key: &'static str) -> PyResult<Vec<u8>> {
    bytes_of(&get(d, key)?, key)
}

pub(super) fn opt_bytes(d: &Bound<'_, PyDict>, key: &'static str) -> PyResult<Option<Vec<u8>>> {
    opt(d, key)?.map(|v| bytes_of(&v, key)).transpose()
}

/// A `_raw` value: bytes holding exactly one A-XDR value.
pub(super) fn raw_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<Vec<u8>> {
    let b = bytes_of(v, key)?;
    crate::axdr::decode(&b).map_err(|e| to_py_err(e.within(Layer::Apdu, key, 0)))?;
    Ok(b)
}

fn req_raw(d: &Bound<'_, PyDict>, key: &'static str) -> PyResult<Vec<u8>> {
    raw_of(&get(d, key)?, key)
}

fn list_of<'py, T>(
    d: &Bound<'py, PyDict>,
    key: &'static str,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<T>> {
    let v = get(d, key)?;
    let l = v.cast::<PyList>().map_err(|_| bad(key, v.to_string(), "a list"))?;
    l.iter().map(|x| f(&x)).collect()
}

pub(super) fn sub<'py>(v: &Bound<'py, PyAny>, key: &'static str) -> PyResult<Bound<'py, PyDict>> {
    v.cast::<PyDict>().cloned().map_err(|_| bad(key, v.to_string(), "a dict"))
}

fn obis_of(v: &Bound<'_, PyAny>) -> PyResult<[u8; 6]> {
    let s: String = ext(v, "obis")?;
    let parts: Vec<u8> = s
        .split('.')
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("obis", format!("{s:?}"), "\"a.b.c.d.e.f\" with six numbers 0..255"))?;
    parts.try_into().map_err(|_| bad("obis", format!("{s:?}"), "\"a.b.c.d.e.f\" with six numbers 0..255"))
}

fn oid_of(v: &Bound<'_, PyAny>, key: &'static str, table: Table, make: fn(u8) -> Vec<u8>) -> PyResult<Vec<u8>> {
    let s: String = ext(v, key)?;
    if let Some(n) = results::value_of(table, &s) {
        return Ok(make(n));
    }
    if let Some(h) = s.strip_prefix("oid:") {
        return hex_of(h).ok_or_else(|| bad(key, format!("{s:?}"), "a name, a dotted OID or oid:<hex>"));
    }
    apdu::ber::oid_from_string(&s).ok_or_else(|| bad(key, format!("{s:?}"), "a name or a dotted OID"))
}

fn hex_of(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len() / 2).map(|i| h.get(2 * i..2 * i + 2).and_then(|x| u8::from_str_radix(x, 16).ok())).collect()
}

fn conformance_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<u32> {
    if let Ok(i) = v.extract::<u32>() {
        return if i < 1 << 24 { Ok(i) } else { Err(bad(key, i, "a 24-bit value")) };
    }
    let names: Vec<String> = ext(v, key)?;
    names.iter().try_fold(0u32, |acc, n| {
        initiate::conformance_bit(n).map(|b| acc | b).ok_or_else(|| bad(key, format!("{n:?}"), "conformance bit names"))
    })
}

const DAR: &str = "a data-access-result name (e.g. \"success\", \"object-undefined\") or its number";
const AR: &str = "an action-result name (e.g. \"success\", \"type-unmatched\") or its number";

pub(super) fn dar_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<u8> {
    u8_of(from_name_or_int(v, results::DATA_ACCESS_RESULTS, key, DAR)?, key, DAR)
}

fn u8_of(v: i64, key: &'static str, expected: &'static str) -> PyResult<u8> {
    u8::try_from(v).map_err(|_| bad(key, v, expected))
}

fn attr_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<AttributeDescriptor> {
    let d = sub(v, key)?;
    Ok(AttributeDescriptor {
        class_id: req(&d, "class_id")?,
        obis: obis_of(&get(&d, "obis")?)?,
        attribute_id: req(&d, "attribute_id")?,
    })
}

fn attr_sel_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<AttributeWithSelection> {
    let attribute = attr_of(v, key)?;
    let d = sub(v, key)?;
    let access = match opt(&d, "access_selection")? {
        None => None,
        Some(s) => {
            let s = sub(&s, "access_selection")?;
            Some(SelectiveAccess { selector: req(&s, "selector")?, parameters: req_raw(&s, "parameters_raw")? })
        }
    };
    Ok(AttributeWithSelection { attribute, access })
}

fn method_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<MethodDescriptor> {
    let d = sub(v, key)?;
    Ok(MethodDescriptor {
        class_id: req(&d, "class_id")?,
        obis: obis_of(&get(&d, "obis")?)?,
        method_id: req(&d, "method_id")?,
    })
}

fn block_of(d: &Bound<'_, PyDict>) -> PyResult<DataBlockSa> {
    Ok(DataBlockSa {
        last_block: req(d, "last_block")?,
        block_number: req(d, "block_number")?,
        raw_data: req_bytes(d, "raw_data")?,
    })
}

fn get_result_of(v: &Bound<'_, PyAny>, key: &'static str) -> PyResult<GetDataResult> {
    let d = sub(v, key)?;
    if let Some(r) = opt(&d, "data_raw")? {
        return Ok(GetDataResult::Data(raw_of(&r, "data_raw")?));
    }
    match opt(&d, "data_access_result")? {
        Some(r) => Ok(GetDataResult::DataAccessResult(dar_of(&r, "data_access_result")?)),
        None => Err(bad(key, v.to_string(), "{\"data_raw\": bytes} or {\"data_access_result\": name}")),
    }
}

fn action_result_of(d: &Bound<'_, PyDict>) -> PyResult<ActionResult> {
    let result = u8_of(from_name_or_int(&get(d, "result")?, results::ACTION_RESULTS, "result", AR)?, "result", AR)?;
    let return_data = opt(d, "return_data")?.map(|r| get_result_of(&r, "return_data")).transpose()?;
    Ok(ActionResult { result, return_data })
}

fn user_info_of(d: &Bound<'_, PyDict>) -> PyResult<Option<Box<Apdu>>> {
    opt(d, "user_information")?.map(|u| Ok(Box::new(from_dict(&sub(&u, "user_information")?)?))).transpose()
}

fn reqs_of(d: &Bound<'_, PyDict>, key: &'static str) -> PyResult<Option<bool>> {
    opt_ext(d, key)
}

pub(super) fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Apdu> {
    let kind: String = req(d, "apdu")?;
    let iid = || req::<u8>(d, "invoke_id_and_priority");
    let ctx = |key| oid_of(&get(d, key)?, key, acse::CONTEXT_NAMES, acse::context_oid);
    let mech = || {
        opt(d, "mechanism_name")?
            .map(|m| oid_of(&m, "mechanism_name", acse::MECHANISM_NAMES, acse::mechanism_oid))
            .transpose()
    };
    Ok(match kind.as_str() {
        "aarq" => Apdu::Aarq(Aarq {
            protocol_version: opt_bytes(d, "protocol_version")?,
            application_context_name: ctx("application_context_name")?,
            called_ap_title: opt_bytes(d, "called_ap_title")?,
            called_ae_qualifier: opt_bytes(d, "called_ae_qualifier")?,
            called_ap_invocation_id: opt_ext(d, "called_ap_invocation_id")?,
            called_ae_invocation_id: opt_ext(d, "called_ae_invocation_id")?,
            calling_ap_title: opt_bytes(d, "calling_ap_title")?,
            calling_ae_qualifier: opt_bytes(d, "calling_ae_qualifier")?,
            calling_ap_invocation_id: opt_ext(d, "calling_ap_invocation_id")?,
            calling_ae_invocation_id: opt_ext(d, "calling_ae_invocation_id")?,
            sender_acse_requirements: reqs_of(d, "sender_acse_requirements")?,
            mechanism_name: mech()?,
            calling_authentication_value: opt_bytes(d, "calling_authentication_value")?,
            implementation_information: opt_bytes(d, "implementation_information")?,
            user_information: user_info_of(d)?,
        }),
        "aare" => {
            let diag = match opt(d, "result_source_diagnostic")? {
                None => None,
                Some(v) => {
                    let dd = sub(&v, "result_source_diagnostic")?;
                    let source: String = req(&dd, "source")?;
                    let val = get(&dd, "value")?;
                    const E: &str = "an associate-source-diagnostic name or number";
                    Some(match source.as_str() {
                        "acse-service-user" => {
                            Diagnostic::ServiceUser(from_name_or_int(&val, acse::USER_DIAGNOSTICS, "value", E)?)
                        }
                        "acse-service-provider" => {
                            Diagnostic::ServiceProvider(from_name_or_int(&val, acse::PROVIDER_DIAGNOSTICS, "value", E)?)
                        }
                        other => {
                            return Err(bad(
                                "source",
                                format!("{other:?}"),
                                "acse-service-user or acse-service-provider",
                            ))
                        }
                    })
                }
            };
            Apdu::Aare(Aare {
                protocol_version: opt_bytes(d, "protocol_version")?,
                application_context_name: match opt(d, "application_context_name")? {
                    None => None,
                    Some(_) => Some(ctx("application_context_name")?),
                },
                result: from_name_or_int(
                    &get(d, "result")?,
                    acse::RESULTS,
                    "result",
                    "accepted, rejected-permanent, rejected-transient or a number",
                )?,
                result_source_diagnostic: diag,
                responding_ap_title: opt_bytes(d, "responding_ap_title")?,
                responding_ae_qualifier: opt_bytes(d, "responding_ae_qualifier")?,
                responding_ap_invocation_id: opt_ext(d, "responding_ap_invocation_id")?,
                responding_ae_invocation_id: opt_ext(d, "responding_ae_invocation_id")?,
                responder_acse_requirements: reqs_of(d, "responder_acse_requirements")?,
                mechanism_name: mech()?,
                responding_authentication_value: opt_bytes(d, "responding_authentication_value")?,
                implementation_information: opt_bytes(d, "implementation_information")?,
                user_information: user_info_of(d)?,
            })
        }
        "rlrq" | "rlre" => {
            let table = if kind == "rlrq" { acse::RELEASE_REQUEST_REASONS } else { acse::RELEASE_RESPONSE_REASONS };
            let reason = opt(d, "reason")?
                .map(|r| from_name_or_int(&r, table, "reason", "a release reason name or number"))
                .transpose()?;
            let r = Release { reason, user_information: user_info_of(d)? };
            if kind == "rlrq" {
                Apdu::Rlrq(r)
            } else {
                Apdu::Rlre(r)
            }
        }
        "initiate-request" => Apdu::InitiateRequest(InitiateRequest {
            dedicated_key: opt_bytes(d, "dedicated_key")?,
            response_allowed: opt_ext(d, "response_allowed")?,
            proposed_quality_of_service: opt_ext(d, "proposed_quality_of_service")?,
            proposed_dlms_version_number: req(d, "proposed_dlms_version_number")?,
            proposed_conformance: conformance_of(&get(d, "proposed_conformance")?, "proposed_conformance")?,
            client_max_receive_pdu_size: req(d, "client_max_receive_pdu_size")?,
        }),
        "initiate-response" => Apdu::InitiateResponse(InitiateResponse {
            negotiated_quality_of_service: opt_ext(d, "negotiated_quality_of_service")?,
            negotiated_dlms_version_number: req(d, "negotiated_dlms_version_number")?,
            negotiated_conformance: conformance_of(&get(d, "negotiated_conformance")?, "negotiated_conformance")?,
            server_max_receive_pdu_size: req(d, "server_max_receive_pdu_size")?,
            vaa_name: req(d, "vaa_name")?,
        }),
        "confirmed-service-error" => {
            const S: &str = "a ConfirmedServiceError service name (e.g. \"initiate-error\") or 1..19";
            const C: &str = "a ServiceError class name (e.g. \"initiate\") or 0..10";
            let service =
                u8_of(from_name_or_int(&get(d, "service")?, xerr::CONFIRMED_SERVICES, "service", S)?, "service", S)?;
            let error =
                u8_of(from_name_or_int(&get(d, "error")?, xerr::SERVICE_ERROR_CLASSES, "error", C)?, "error", C)?;
            if !(1..=19).contains(&service) {
                return Err(bad("service", service, S));
            }
            if error > 10 {
                return Err(bad("error", error, C));
            }
            let table: Table = if error == 6 { xerr::INITIATE_ERRORS } else { &[] };
            let value = u8_of(from_name_or_int(&get(d, "value")?, table, "value", "0..255")?, "value", "0..255")?;
            Apdu::ConfirmedServiceError(ConfirmedServiceError { service, error, value })
        }
        "get-request-normal" => Apdu::GetRequest(GetRequest::Normal {
            invoke_id_and_priority: iid()?,
            attribute: attr_sel_of(&get(d, "attribute")?, "attribute")?,
        }),
        "get-request-next" => {
            Apdu::GetRequest(GetRequest::Next { invoke_id_and_priority: iid()?, block_number: req(d, "block_number")? })
        }
        "get-request-with-list" => Apdu::GetRequest(GetRequest::WithList {
            invoke_id_and_priority: iid()?,
            attributes: list_of(d, "attributes", |a| attr_sel_of(a, "attributes"))?,
        }),
        "get-response-normal" => Apdu::GetResponse(GetResponse::Normal {
            invoke_id_and_priority: iid()?,
            result: get_result_of(&get(d, "result")?, "result")?,
        }),
        "get-response-with-datablock" => {
            let result = match opt(d, "raw_data")? {
                Some(r) => BlockResult::RawData(bytes_of(&r, "raw_data")?),
                None => match opt(d, "data_access_result")? {
                    Some(v) => BlockResult::DataAccessResult(dar_of(&v, "data_access_result")?),
                    None => return Err(bad("raw_data", "None", "raw_data bytes or a data_access_result")),
                },
            };
            Apdu::GetResponse(GetResponse::WithDatablock {
                invoke_id_and_priority: iid()?,
                last_block: req(d, "last_block")?,
                block_number: req(d, "block_number")?,
                result,
            })
        }
        "get-response-with-list" => Apdu::GetResponse(GetResponse::WithList {
            invoke_id_and_priority: iid()?,
            results: list_of(d, "results", |r| get_result_of(r, "results"))?,
        }),
        "set-request-normal" => Apdu::SetRequest(SetRequest::Normal {
            invoke_id_and_priority: iid()?,
            attribute: attr_sel_of(&get(d, "attribute")?, "attribute")?,
            value: req_raw(d, "value_raw")?,
        }),
        "set-request-with-first-datablock" => Apdu::SetRequest(SetRequest::WithFirstDatablock {
            invoke_id_and_priority: iid()?,
            attribute: attr_sel_of(&get(d, "attribute")?, "attribute")?,
            block: block_of(d)?,
        }),
        "set-request-with-datablock" => {
            Apdu::SetRequest(SetRequest::WithDatablock { invoke_id_and_priority: iid()?, block: block_of(d)? })
        }
        "set-request-with-list" => Apdu::SetRequest(SetRequest::WithList {
            invoke_id_and_priority: iid()?,
            attributes: list_of(d, "attributes", |a| attr_sel_of(a, "attributes"))?,
            values: list_of(d, "values_raw", |v| raw_of(v, "values_raw"))?,
        }),
        "set-request-with-list-and-first-datablock" => Apdu::SetRequest(SetRequest::WithListAndFirstDatablock {
            invoke_id_and_priority: iid()?,
            attributes: list_of(d, "attributes", |a| attr_sel_of(a, "attributes"))?,
            block: block_of(d)?,
        }),
        "set-response-normal" => Apdu::SetResponse(SetResponse::Normal {
            invoke_id_and_priority: iid()?,
            result: dar_of(&get(d, "result")?, "result")?,
        }),
        "set-response-datablock" => Apdu::SetResponse(SetResponse::Datablock {
            invoke_id_and_priority: iid()?,
            block_number: req(d, "block_number")?,
        }),
        "set-response-last-datablock" => Apdu::SetResponse(SetResponse::LastDatablock {
            invoke_id_and_priority: iid()?,
            result: dar_of(&get(d, "result")?, "result")?,
            block_number: req(d, "block_number")?,
        }),
        "set-response-last-datablock-with-list" => Apdu::SetResponse(SetResponse::LastDatablockWithList {
            invoke_id_and_priority: iid()?,
            results: list_of(d, "results", |r| dar_of(r, "results"))?,
            block_number: req(d, "block_number")?,
        }),
        "set-response-with-list" => Apdu::SetResponse(SetResponse::WithList {
            invoke_id_and_priority: iid()?,
            results: list_of(d, "results", |r| dar_of(r, "results"))?,
        }),
        "action-request-normal" => Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id_and_priority: iid()?,
            method: method_of(&get(d, "method")?, "method")?,
            parameters: opt(d, "parameters_raw")?.map(|p| raw_of(&p, "parameters_raw")).transpose()?,
        }),
        "action-request-next-pblock" => Apdu::ActionRequest(ActionRequest::NextPblock {
            invoke_id_and_priority: iid()?,
            block_number: req(d, "block_number")?,
        }),
        "action-request-with-list" => Apdu::ActionRequest(ActionRequest::WithList {
            invoke_id_and_priority: iid()?,
            methods: list_of(d, "methods", |m| method_of(m, "methods"))?,
            parameters: list_of(d, "parameters_raw", |p| raw_of(p, "parameters_raw"))?,
        }),
        "action-request-with-first-pblock" => Apdu::ActionRequest(ActionRequest::WithFirstPblock {
            invoke_id_and_priority: iid()?,
            method: method_of(&get(d, "method")?, "method")?,
            block: block_of(d)?,
        }),
        "action-request-with-list-and-first-pblock" => Apdu::ActionRequest(ActionRequest::WithListAndFirstPblock {
            invoke_id_and_priority: iid()?,
            methods: list_of(d, "methods", |m| method_of(m, "methods"))?,
            block: block_of(d)?,
        }),
        "action-request-with-pblock" => {
            Apdu::ActionRequest(ActionRequest::WithPblock { invoke_id_and_priority: iid()?, block: block_of(d)? })
        }
        "action-response-normal" => Apdu::ActionResponse(ActionResponse::Normal {
            invoke_id_and_priority: iid()?,
            result: action_result_of(d)?,
        }),
        "action-response-with-pblock" => {
            Apdu::ActionResponse(ActionResponse::WithPblock { invoke_id_and_priority: iid()?, block: block_of(d)? })
        }
        "action-response-with-list" => Apdu::ActionResponse(ActionResponse::WithList {
            invoke_id_and_priority: iid()?,
            results: list_of(d, "results", |r| action_result_of(&sub(r, "results")?))?,
        }),
        "action-response-next-pblock" => Apdu::ActionResponse(ActionResponse::NextPblock {
            invoke_id_and_priority: iid()?,
            block_number: req(d, "block_number")?,
        }),
        "data-notification" => Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: req(d, "long_invoke_id_and_priority")?,
            date_time: opt_bytes(d, "date_time")?.unwrap_or_default(),
            body: req_raw(d, "body_raw")?,
        }),
        "event-notification-request" => Apdu::EventNotification(EventNotification {
            time: opt_bytes(d, "time")?,
            attribute: attr_of(&get(d, "attribute")?, "attribute")?,
            value: req_raw(d, "value_raw")?,
        }),
        "exception-response" => {
            const SE: &str = "service-not-allowed, service-unknown or a number";
            const SV: &str = "an exception service-error name (e.g. \"deciphering-error\") or 1..6";
            let state_error = u8_of(
                from_name_or_int(&get(d, "state_error")?, xerr::STATE_ERRORS, "state_error", SE)?,
                "state_error",
                SE,
            )?;
            let service_error = u8_of(
                from_name_or_int(&get(d, "service_error")?, xerr::SERVICE_ERRORS, "service_error", SV)?,
                "service_error",
                SV,
            )?;
            if !(1..=6).contains(&service_error) {
                return Err(bad("service_error", service_error, SV));
            }
            let invocation_counter = if service_error == 6 { Some(req(d, "invocation_counter")?) } else { None };
            Apdu::ExceptionResponse(ExceptionResponse { state_error, service_error, invocation_counter })
        }
        "general-block-transfer" => {
            let window: u8 = req(d, "window")?;
            if window > 63 {
                return Err(bad("window", window, "0..63"));
            }
            Apdu::GeneralBlockTransfer(GeneralBlockTransfer {
                last_block: req(d, "last_block")?,
                streaming: req(d, "streaming")?,
                window,
                block_number: req(d, "block_number")?,
                block_number_ack: req(d, "block_number_ack")?,
                block_data: req_bytes(d, "block_data")?,
            })
        }
        ciphered::GENERAL_GLO_CIPHERING | ciphered::GENERAL_DED_CIPHERING => Apdu::GeneralCiphering(GeneralCiphering {
            dedicated: kind == ciphered::GENERAL_DED_CIPHERING,
            system_title: req_bytes(d, "system_title")?,
            security_control: req(d, "security_control")?,
            invocation_counter: req(d, "invocation_counter")?,
            ciphertext: req_bytes(d, "ciphertext")?,
        }),
        other if super::sn_dict::is_sn(other) => super::sn_dict::sn_from(d, other)?,
        other => match ciphered::ciphered_tag(other) {
            Some(tag) => Apdu::Ciphered(Ciphered {
                tag,
                security_control: req(d, "security_control")?,
                invocation_counter: req(d, "invocation_counter")?,
                ciphertext: req_bytes(d, "ciphertext")?,
            }),
            None => return Err(bad("apdu", format!("{other:?}"), "one of apdu_kinds()")),
        },
    })
}
