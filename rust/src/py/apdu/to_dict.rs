//! `Apdu` to the Python dict documented in `_core.pyi` (conversion only).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::Table;
use crate::apdu::{
    self, association as acse, errors as xerr, initiate, results, AttributeDescriptor, AttributeWithSelection,
    BlockResult, DataBlockSa, GetDataResult, MethodDescriptor,
};
use crate::apdu::{
    Aare, Aarq, ActionRequest, ActionResponse, ActionResult, Apdu, Diagnostic, GetRequest, GetResponse, Release,
    SetRequest, SetResponse,
};

fn name_or_int<'py>(py: Python<'py>, table: Table, v: i64) -> PyResult<Bound<'py, PyAny>> {
    match u8::try_from(v).ok().and_then(|b| results::name_of(table, b)) {
        Some(n) => Ok(PyString::new(py, n).into_any()),
        None => Ok(v.into_pyobject(py)?.into_any()),
    }
}

fn obis_str(o: &[u8; 6]) -> String {
    o.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
}

fn oid_name(py: Python<'_>, oid: &[u8], named: fn(&[u8]) -> Option<&'static str>) -> PyResult<Py<PyAny>> {
    let s = match named(oid) {
        Some(n) => n.to_string(),
        None => apdu::ber::oid_to_string(oid).unwrap_or_else(|| format!("oid:{}", hex_string(oid))),
    };
    Ok(PyString::new(py, &s).into_any().unbind())
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn conformance_list<'py>(py: Python<'py>, c: u32) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, initiate::conformance_names(c))
}

pub(super) fn to_dict<'py>(py: Python<'py>, a: &Apdu) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("apdu", a.kind())?;
    match a {
        Apdu::Aarq(x) => aarq_to(py, &d, x)?,
        Apdu::Aare(x) => aare_to(py, &d, x)?,
        Apdu::Rlrq(x) => release_to(py, &d, x, acse::RELEASE_REQUEST_REASONS)?,
        Apdu::Rlre(x) => release_to(py, &d, x, acse::RELEASE_RESPONSE_REASONS)?,
        Apdu::InitiateRequest(x) => {
            d.set_item("dedicated_key", x.dedicated_key.as_deref().map(|k| PyBytes::new(py, k)))?;
            d.set_item("response_allowed", x.response_allowed)?;
            d.set_item("proposed_quality_of_service", x.proposed_quality_of_service)?;
            d.set_item("proposed_dlms_version_number", x.proposed_dlms_version_number)?;
            d.set_item("proposed_conformance", conformance_list(py, x.proposed_conformance)?)?;
            d.set_item("client_max_receive_pdu_size", x.client_max_receive_pdu_size)?;
        }
        Apdu::InitiateResponse(x) => {
            d.set_item("negotiated_quality_of_service", x.negotiated_quality_of_service)?;
            d.set_item("negotiated_dlms_version_number", x.negotiated_dlms_version_number)?;
            d.set_item("negotiated_conformance", conformance_list(py, x.negotiated_conformance)?)?;
            d.set_item("server_max_receive_pdu_size", x.server_max_receive_pdu_size)?;
            d.set_item("vaa_name", x.vaa_name)?;
        }
        Apdu::ConfirmedServiceError(x) => {
            d.set_item("service", name_or_int(py, xerr::CONFIRMED_SERVICES, x.service.into())?)?;
            d.set_item("error", name_or_int(py, xerr::SERVICE_ERROR_CLASSES, x.error.into())?)?;
            let table: Table = if x.error == 6 { xerr::INITIATE_ERRORS } else { &[] };
            d.set_item("value", name_or_int(py, table, x.value.into())?)?;
        }
        Apdu::GetRequest(g) => match g {
            GetRequest::Normal { invoke_id_and_priority: i, attribute } => {
                d.set_item("invoke_id_and_priority", i)?;
                d.set_item("attribute", attr_sel_to(py, attribute)?)?;
            }
            GetRequest::Next { invoke_id_and_priority: i, block_number } => {
                d.set_item("invoke_id_and_priority", i)?;
                d.set_item("block_number", block_number)?;
            }
            GetRequest::WithList { invoke_id_and_priority: i, attributes } => {
                d.set_item("invoke_id_and_priority", i)?;
                d.set_item("attributes", attrs_to(py, attributes)?)?;
            }
        },
        Apdu::GetResponse(g) => match g {
            GetResponse::Normal { invoke_id_and_priority: i, result } => {
                d.set_item("invoke_id_and_priority", i)?;
                d.set_item("result", get_result_to(py, result)?)?;
            }
            GetResponse::WithDatablock { invoke_id_and_priority: i, last_block, block_number, result } => {
                d.set_item("invoke_id_and_priority", i)?;
                d.set_item("last_block", last_block)?;
                d.set_item("block_number", block_number)?;
                let (raw, dar) = match result {
                    BlockResult::RawData(r) => (Some(PyBytes::new(py, r)), None),
                    BlockResult::DataAccessResult(v) => {
                        (None, Some(name_or_int(py, results::DATA_ACCESS_RESULTS, (*v).into())?))
                    }
                };
                d.set_item("raw_data", raw)?;
                d.set_item("data_access_result", dar)?;
            }
            GetResponse::WithList { invoke_id_and_priority: i, results } => {
                d.set_item("invoke_id_and_priority", i)?;
                let l = PyList::empty(py);
                for r in results {
                    l.append(get_result_to(py, r)?)?;
                }
                d.set_item("results", l)?;
            }
        },
        Apdu::SetRequest(s) => set_request_to(py, &d, s)?,
        Apdu::SetResponse(s) => set_response_to(py, &d, s)?,
        Apdu::ActionRequest(x) => action_request_to(py, &d, x)?,
        Apdu::ActionResponse(x) => action_response_to(py, &d, x)?,
        Apdu::DataNotification(n) => {
            d.set_item("long_invoke_id_and_priority", n.long_invoke_id_and_priority)?;
            d.set_item("date_time", (!n.date_time.is_empty()).then(|| PyBytes::new(py, &n.date_time)))?;
            d.set_item("body_raw", PyBytes::new(py, &n.body))?;
        }
        Apdu::EventNotification(n) => {
            d.set_item("time", n.time.as_deref().map(|t| PyBytes::new(py, t)))?;
            d.set_item("attribute", attr_to(py, &n.attribute)?)?;
            d.set_item("value_raw", PyBytes::new(py, &n.value))?;
        }
        Apdu::ExceptionResponse(e) => {
            d.set_item("state_error", name_or_int(py, xerr::STATE_ERRORS, e.state_error.into())?)?;
            d.set_item("service_error", name_or_int(py, xerr::SERVICE_ERRORS, e.service_error.into())?)?;
            d.set_item("invocation_counter", e.invocation_counter)?;
        }
        Apdu::GeneralBlockTransfer(b) => {
            d.set_item("last_block", b.last_block)?;
            d.set_item("streaming", b.streaming)?;
            d.set_item("window", b.window)?;
            d.set_item("block_number", b.block_number)?;
            d.set_item("block_number_ack", b.block_number_ack)?;
            d.set_item("block_data", PyBytes::new(py, &b.block_data))?;
        }
        Apdu::Ciphered(c) => {
            d.set_item("security_control", c.security_control)?;
            d.set_item("invocation_counter", c.invocation_counter)?;
            d.set_item("ciphertext", PyBytes::new(py, &c.ciphertext))?;
        }
        Apdu::GeneralCiphering(g) => {
            d.set_item("system_title", PyBytes::new(py, &g.system_title))?;
            d.set_item("security_control", g.security_control)?;
            d.set_item("invocation_counter", g.invocation_counter)?;
            d.set_item("ciphertext", PyBytes::new(py, &g.ciphertext))?;
        }
        Apdu::ReadRequest(_)
        | Apdu::ReadResponse(_)
        | Apdu::WriteRequest(_)
        | Apdu::WriteResponse(_)
        | Apdu::UnconfirmedWriteRequest(_)
        | Apdu::InformationReport(_) => {
            super::sn_dict::sn_to(py, &d, a)?;
        }
    }
    Ok(d)
}

fn opt_b<'py>(py: Python<'py>, b: &Option<Vec<u8>>) -> Option<Bound<'py, PyBytes>> {
    b.as_deref().map(|b| PyBytes::new(py, b))
}

fn user_info_to<'py>(py: Python<'py>, u: &Option<Box<Apdu>>) -> PyResult<Option<Bound<'py, PyDict>>> {
    u.as_deref().map(|a| to_dict(py, a)).transpose()
}

fn aarq_to(py: Python<'_>, d: &Bound<'_, PyDict>, a: &Aarq) -> PyResult<()> {
    d.set_item("protocol_version", opt_b(py, &a.protocol_version))?;
    d.set_item("application_context_name", oid_name(py, &a.application_context_name, acse::context_name)?)?;
    d.set_item("called_ap_title", opt_b(py, &a.called_ap_title))?;
    d.set_item("called_ae_qualifier", opt_b(py, &a.called_ae_qualifier))?;
    d.set_item("called_ap_invocation_id", a.called_ap_invocation_id)?;
    d.set_item("called_ae_invocation_id", a.called_ae_invocation_id)?;
    d.set_item("calling_ap_title", opt_b(py, &a.calling_ap_title))?;
    d.set_item("calling_ae_qualifier", opt_b(py, &a.calling_ae_qualifier))?;
    d.set_item("calling_ap_invocation_id", a.calling_ap_invocation_id)?;
    d.set_item("calling_ae_invocation_id", a.calling_ae_invocation_id)?;
    d.set_item("sender_acse_requirements", a.sender_acse_requirements)?;
    let mech = a.mechanism_name.as_deref().map(|m| oid_name(py, m, acse::mechanism_name)).transpose()?;
    d.set_item("mechanism_name", mech)?;
    d.set_item("calling_authentication_value", opt_b(py, &a.calling_authentication_value))?;
    d.set_item("implementation_information", opt_b(py, &a.implementation_information))?;
    d.set_item("user_information", user_info_to(py, &a.user_information)?)?;
    Ok(())
}

fn aare_to(py: Python<'_>, d: &Bound<'_, PyDict>, a: &Aare) -> PyResult<()> {
    d.set_item("protocol_version", opt_b(py, &a.protocol_version))?;
    let ctx = a.application_context_name.as_deref().map(|c| oid_name(py, c, acse::context_name)).transpose()?;
    d.set_item("application_context_name", ctx)?;
    d.set_item("result", name_or_int(py, acse::RESULTS, a.result)?)?;
    let diag = match a.result_source_diagnostic {
        None => None,
        Some(diag) => {
            let (source, table, v) = match diag {
                Diagnostic::ServiceUser(v) => ("acse-service-user", acse::USER_DIAGNOSTICS, v),
                Diagnostic::ServiceProvider(v) => ("acse-service-provider", acse::PROVIDER_DIAGNOSTICS, v),
            };
            let dd = PyDict::new(py);
            dd.set_item("source", source)?;
            dd.set_item("value", name_or_int(py, table, v)?)?;
            Some(dd)
        }
    };
    d.set_item("result_source_diagnostic", diag)?;
    d.set_item("responding_ap_title", opt_b(py, &a.responding_ap_title))?;
    d.set_item("responding_ae_qualifier", opt_b(py, &a.responding_ae_qualifier))?;
    d.set_item("responding_ap_invocation_id", a.responding_ap_invocation_id)?;
    d.set_item("responding_ae_invocation_id", a.responding_ae_invocation_id)?;
    d.set_item("responder_acse_requirements", a.responder_acse_requirements)?;
    let mech = a.mechanism_name.as_deref().map(|m| oid_name(py, m, acse::mechanism_name)).transpose()?;
    d.set_item("mechanism_name", mech)?;
    d.set_item("responding_authentication_value", opt_b(py, &a.responding_authentication_value))?;
    d.set_item("implementation_information", opt_b(py, &a.implementation_information))?;
    d.set_item("user_information", user_info_to(py, &a.user_information)?)?;
    Ok(())
}

fn release_to(py: Python<'_>, d: &Bound<'_, PyDict>, r: &Release, table: Table) -> PyResult<()> {
    d.set_item("reason", r.reason.map(|v| name_or_int(py, table, v)).transpose()?)?;
    d.set_item("user_information", user_info_to(py, &r.user_information)?)?;
    Ok(())
}

fn attr_to<'py>(py: Python<'py>, a: &AttributeDescriptor) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("class_id", a.class_id)?;
    d.set_item("obis", obis_str(&a.obis))?;
    d.set_item("attribute_id", a.attribute_id)?;
    Ok(d)
}

fn attr_sel_to<'py>(py: Python<'py>, a: &AttributeWithSelection) -> PyResult<Bound<'py, PyDict>> {
    let d = attr_to(py, &a.attribute)?;
    let access = match &a.access {
        None => None,
        Some(s) => {
            let sd = PyDict::new(py);
            sd.set_item("selector", s.selector)?;
            sd.set_item("parameters_raw", PyBytes::new(py, &s.parameters))?;
            Some(sd)
        }
    };
    d.set_item("access_selection", access)?;
    Ok(d)
}

fn attrs_to<'py>(py: Python<'py>, a: &[AttributeWithSelection]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for x in a {
        l.append(attr_sel_to(py, x)?)?;
    }
    Ok(l)
}

fn method_to<'py>(py: Python<'py>, m: &MethodDescriptor) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("class_id", m.class_id)?;
    d.set_item("obis", obis_str(&m.obis))?;
    d.set_item("method_id", m.method_id)?;
    Ok(d)
}

fn methods_to<'py>(py: Python<'py>, m: &[MethodDescriptor]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for x in m {
        l.append(method_to(py, x)?)?;
    }
    Ok(l)
}

fn get_result_to<'py>(py: Python<'py>, r: &GetDataResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match r {
        GetDataResult::Data(b) => d.set_item("data_raw", PyBytes::new(py, b))?,
        GetDataResult::DataAccessResult(v) => {
            d.set_item("data_access_result", name_or_int(py, results::DATA_ACCESS_RESULTS, (*v).into())?)?
        }
    }
    Ok(d)
}

fn block_to(py: Python<'_>, d: &Bound<'_, PyDict>, b: &DataBlockSa) -> PyResult<()> {
    d.set_item("last_block", b.last_block)?;
    d.set_item("block_number", b.block_number)?;
    d.set_item("raw_data", PyBytes::new(py, &b.raw_data))?;
    Ok(())
}

fn raws_to<'py>(py: Python<'py>, v: &[Vec<u8>]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, v.iter().map(|b| PyBytes::new(py, b)))
}

fn dar_list<'py>(py: Python<'py>, v: &[u8]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for x in v {
        l.append(name_or_int(py, results::DATA_ACCESS_RESULTS, (*x).into())?)?;
    }
    Ok(l)
}

fn set_request_to(py: Python<'_>, d: &Bound<'_, PyDict>, s: &SetRequest) -> PyResult<()> {
    match s {
        SetRequest::Normal { invoke_id_and_priority: i, attribute, value } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("attribute", attr_sel_to(py, attribute)?)?;
            d.set_item("value_raw", PyBytes::new(py, value))?;
        }
        SetRequest::WithFirstDatablock { invoke_id_and_priority: i, attribute, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("attribute", attr_sel_to(py, attribute)?)?;
            block_to(py, d, block)?;
        }
        SetRequest::WithDatablock { invoke_id_and_priority: i, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            block_to(py, d, block)?;
        }
        SetRequest::WithList { invoke_id_and_priority: i, attributes, values } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("attributes", attrs_to(py, attributes)?)?;
            d.set_item("values_raw", raws_to(py, values)?)?;
        }
        SetRequest::WithListAndFirstDatablock { invoke_id_and_priority: i, attributes, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("attributes", attrs_to(py, attributes)?)?;
            block_to(py, d, block)?;
        }
    }
    Ok(())
}

fn set_response_to(py: Python<'_>, d: &Bound<'_, PyDict>, s: &SetResponse) -> PyResult<()> {
    let dar = |v: u8| name_or_int(py, results::DATA_ACCESS_RESULTS, v.into());
    match s {
        SetResponse::Normal { invoke_id_and_priority: i, result } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("result", dar(*result)?)?;
        }
        SetResponse::Datablock { invoke_id_and_priority: i, block_number } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("block_number", block_number)?;
        }
        SetResponse::LastDatablock { invoke_id_and_priority: i, result, block_number } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("result", dar(*result)?)?;
            d.set_item("block_number", block_number)?;
        }
        SetResponse::LastDatablockWithList { invoke_id_and_priority: i, results, block_number } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("results", dar_list(py, results)?)?;
            d.set_item("block_number", block_number)?;
        }
        SetResponse::WithList { invoke_id_and_priority: i, results } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("results", dar_list(py, results)?)?;
        }
    }
    Ok(())
}

fn action_request_to(py: Python<'_>, d: &Bound<'_, PyDict>, a: &ActionRequest) -> PyResult<()> {
    match a {
        ActionRequest::Normal { invoke_id_and_priority: i, method, parameters } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("method", method_to(py, method)?)?;
            d.set_item("parameters_raw", opt_b(py, parameters))?;
        }
        ActionRequest::NextPblock { invoke_id_and_priority: i, block_number } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("block_number", block_number)?;
        }
        ActionRequest::WithList { invoke_id_and_priority: i, methods, parameters } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("methods", methods_to(py, methods)?)?;
            d.set_item("parameters_raw", raws_to(py, parameters)?)?;
        }
        ActionRequest::WithFirstPblock { invoke_id_and_priority: i, method, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("method", method_to(py, method)?)?;
            block_to(py, d, block)?;
        }
        ActionRequest::WithListAndFirstPblock { invoke_id_and_priority: i, methods, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("methods", methods_to(py, methods)?)?;
            block_to(py, d, block)?;
        }
        ActionRequest::WithPblock { invoke_id_and_priority: i, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            block_to(py, d, block)?;
        }
    }
    Ok(())
}

fn action_result_to<'py>(py: Python<'py>, r: &ActionResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("result", name_or_int(py, results::ACTION_RESULTS, r.result.into())?)?;
    d.set_item("return_data", r.return_data.as_ref().map(|x| get_result_to(py, x)).transpose()?)?;
    Ok(d)
}

fn action_response_to(py: Python<'_>, d: &Bound<'_, PyDict>, a: &ActionResponse) -> PyResult<()> {
    match a {
        ActionResponse::Normal { invoke_id_and_priority: i, result } => {
            d.set_item("invoke_id_and_priority", i)?;
            let r = action_result_to(py, result)?;
            d.set_item("result", r.get_item("result")?)?;
            d.set_item("return_data", r.get_item("return_data")?)?;
        }
        ActionResponse::WithPblock { invoke_id_and_priority: i, block } => {
            d.set_item("invoke_id_and_priority", i)?;
            block_to(py, d, block)?;
        }
        ActionResponse::WithList { invoke_id_and_priority: i, results } => {
            d.set_item("invoke_id_and_priority", i)?;
            let l = PyList::empty(py);
            for r in results {
                l.append(action_result_to(py, r)?)?;
            }
            d.set_item("results", l)?;
        }
        ActionResponse::NextPblock { invoke_id_and_priority: i, block_number } => {
            d.set_item("invoke_id_and_priority", i)?;
            d.set_item("block_number", block_number)?;
        }
    }
    Ok(())
}
