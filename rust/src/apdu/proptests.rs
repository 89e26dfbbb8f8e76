//! Property tests of the APDU codec: generated APDUs of every family
//! round-trip through bytes, and random or mutated bytes never panic (what
//! decodes re-encodes to something that decodes the same).

use super::tests::vectors;
use super::*;
use crate::axdr::Data;
use proptest::prelude::*;

fn arb_raw() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Data::Null),
        any::<u8>().prop_map(Data::Unsigned),
        any::<u16>().prop_map(Data::LongUnsigned),
        any::<i32>().prop_map(Data::DoubleLong),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Data::OctetString),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| proptest::collection::vec(inner, 0..4).prop_map(Data::Structure))
        .prop_map(|d| d.encode())
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_attr() -> impl Strategy<Value = AttributeWithSelection> {
    (any::<u16>(), any::<[u8; 6]>(), any::<i8>(), proptest::option::of((any::<u8>(), arb_raw()))).prop_map(
        |(class_id, obis, attribute_id, access)| AttributeWithSelection {
            attribute: AttributeDescriptor { class_id, obis, attribute_id },
            access: access.map(|(selector, parameters)| SelectiveAccess { selector, parameters }),
        },
    )
}

fn arb_method() -> impl Strategy<Value = MethodDescriptor> {
    (any::<u16>(), any::<[u8; 6]>(), any::<i8>()).prop_map(|(class_id, obis, method_id)| MethodDescriptor {
        class_id,
        obis,
        method_id,
    })
}

fn arb_block() -> impl Strategy<Value = DataBlockSa> {
    (any::<bool>(), any::<u32>(), arb_bytes(300)).prop_map(|(last_block, block_number, raw_data)| DataBlockSa {
        last_block,
        block_number,
        raw_data,
    })
}

fn arb_get_result() -> impl Strategy<Value = GetDataResult> {
    prop_oneof![arb_raw().prop_map(GetDataResult::Data), any::<u8>().prop_map(GetDataResult::DataAccessResult)]
}

fn arb_initiate() -> impl Strategy<Value = Apdu> {
    prop_oneof![
        (
            proptest::option::of(arb_bytes(33)),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<u8>()),
            any::<u8>(),
            0u32..0x0100_0000,
            any::<u16>()
        )
            .prop_map(|(k, r, q, v, c, m)| Apdu::InitiateRequest(InitiateRequest {
                dedicated_key: k,
                response_allowed: r,
                proposed_quality_of_service: q,
                proposed_dlms_version_number: v,
                proposed_conformance: c,
                client_max_receive_pdu_size: m,
            })),
        (proptest::option::of(any::<u8>()), any::<u8>(), 0u32..0x0100_0000, any::<u16>(), any::<u16>()).prop_map(
            |(q, v, c, m, n)| Apdu::InitiateResponse(InitiateResponse {
                negotiated_quality_of_service: q,
                negotiated_dlms_version_number: v,
                negotiated_conformance: c,
                server_max_receive_pdu_size: m,
                vaa_name: n,
            })
        ),
        (1u8..=19, 0u8..=10, any::<u8>()).prop_map(|(service, error, value)| Apdu::ConfirmedServiceError(
            ConfirmedServiceError { service, error, value }
        )),
        (prop::sample::select(vec![0x21u8, 0x28, 0x2e, 0x41, 0x48, 0x4e]), any::<u8>(), any::<u32>(), arb_bytes(40))
            .prop_map(|(tag, sc, ic, ct)| {
                Apdu::Ciphered(Ciphered { tag, security_control: sc, invocation_counter: ic, ciphertext: ct })
            }),
    ]
}

fn arb_acse() -> impl Strategy<Value = Apdu> {
    let opt_bytes = || proptest::option::of(arb_bytes(20));
    let opt_int = || proptest::option::of(any::<i64>());
    prop_oneof![
        (
            (1u8..=4, opt_bytes(), opt_bytes(), opt_int(), proptest::option::of(any::<bool>())),
            (proptest::option::of(0u8..=7), opt_bytes(), proptest::option::of(arb_initiate()), opt_int()),
        )
            .prop_map(|((ctx, title, qual, inv, req), (mech, auth, ui, ae))| Apdu::Aarq(Aarq {
                application_context_name: association::context_oid(ctx),
                calling_ap_title: title,
                calling_ae_qualifier: qual,
                calling_ap_invocation_id: inv,
                calling_ae_invocation_id: ae,
                sender_acse_requirements: req,
                mechanism_name: mech.map(association::mechanism_oid),
                calling_authentication_value: auth,
                user_information: ui.map(Box::new),
                ..Aarq::default()
            })),
        (
            (0i64..3, proptest::option::of((any::<bool>(), 0i64..20)), opt_bytes(), opt_bytes()),
            (proptest::option::of(arb_initiate()), proptest::option::of(1u8..=4)),
        )
            .prop_map(|((result, diag, title, auth), (ui, ctx))| Apdu::Aare(Aare {
                application_context_name: ctx.map(association::context_oid),
                result,
                result_source_diagnostic: diag.map(|(user, v)| if user {
                    Diagnostic::ServiceUser(v)
                } else {
                    Diagnostic::ServiceProvider(v)
                }),
                responding_ap_title: title,
                responding_authentication_value: auth,
                user_information: ui.map(Box::new),
                ..Aare::default()
            })),
        (opt_int(), proptest::option::of(arb_initiate()), any::<bool>()).prop_map(|(reason, ui, req)| {
            let r = Release { reason, user_information: ui.map(Box::new) };
            if req {
                Apdu::Rlrq(r)
            } else {
                Apdu::Rlre(r)
            }
        }),
    ]
}

fn arb_xdlms() -> impl Strategy<Value = Apdu> {
    let iid = any::<u8>;
    prop_oneof![
        (iid(), arb_attr())
            .prop_map(|(i, a)| Apdu::GetRequest(GetRequest::Normal { invoke_id_and_priority: i, attribute: a })),
        (iid(), any::<u32>())
            .prop_map(|(i, b)| Apdu::GetRequest(GetRequest::Next { invoke_id_and_priority: i, block_number: b })),
        (iid(), proptest::collection::vec(arb_attr(), 0..4))
            .prop_map(|(i, a)| Apdu::GetRequest(GetRequest::WithList { invoke_id_and_priority: i, attributes: a })),
        (iid(), arb_get_result())
            .prop_map(|(i, r)| Apdu::GetResponse(GetResponse::Normal { invoke_id_and_priority: i, result: r })),
        (
            iid(),
            any::<bool>(),
            any::<u32>(),
            prop_oneof![
                arb_bytes(300).prop_map(BlockResult::RawData),
                any::<u8>().prop_map(BlockResult::DataAccessResult)
            ]
        )
            .prop_map(|(i, l, b, r)| Apdu::GetResponse(GetResponse::WithDatablock {
                invoke_id_and_priority: i,
                last_block: l,
                block_number: b,
                result: r
            })),
        (iid(), proptest::collection::vec(arb_get_result(), 0..4))
            .prop_map(|(i, r)| Apdu::GetResponse(GetResponse::WithList { invoke_id_and_priority: i, results: r })),
        (iid(), arb_attr(), arb_raw()).prop_map(|(i, a, v)| Apdu::SetRequest(SetRequest::Normal {
            invoke_id_and_priority: i,
            attribute: a,
            value: v
        })),
        (iid(), arb_attr(), arb_block()).prop_map(|(i, a, b)| Apdu::SetRequest(SetRequest::WithFirstDatablock {
            invoke_id_and_priority: i,
            attribute: a,
            block: b
        })),
        (iid(), proptest::collection::vec(arb_attr(), 0..3), proptest::collection::vec(arb_raw(), 0..3)).prop_map(
            |(i, a, v)| Apdu::SetRequest(SetRequest::WithList { invoke_id_and_priority: i, attributes: a, values: v })
        ),
        (iid(), proptest::collection::vec(any::<u8>(), 0..4), any::<u32>()).prop_map(|(i, r, b)| Apdu::SetResponse(
            SetResponse::LastDatablockWithList { invoke_id_and_priority: i, results: r, block_number: b }
        )),
        (iid(), arb_method(), proptest::option::of(arb_raw())).prop_map(|(i, m, p)| Apdu::ActionRequest(
            ActionRequest::Normal { invoke_id_and_priority: i, method: m, parameters: p }
        )),
        (iid(), proptest::collection::vec(arb_method(), 0..3), arb_block()).prop_map(|(i, m, b)| Apdu::ActionRequest(
            ActionRequest::WithListAndFirstPblock { invoke_id_and_priority: i, methods: m, block: b }
        )),
        (iid(), any::<u8>(), proptest::option::of(arb_get_result())).prop_map(|(i, r, d)| Apdu::ActionResponse(
            ActionResponse::Normal { invoke_id_and_priority: i, result: ActionResult { result: r, return_data: d } }
        )),
        (any::<u32>(), arb_bytes(13), arb_raw()).prop_map(|(i, d, b)| Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: i,
            date_time: d,
            body: b
        })),
        (proptest::option::of(arb_bytes(13)), arb_attr(), arb_raw()).prop_map(|(t, a, v)| Apdu::EventNotification(
            EventNotification { time: t, attribute: a.attribute, value: v }
        )),
        (any::<u8>(), 1u8..=6, any::<u32>()).prop_map(|(s, e, ic)| Apdu::ExceptionResponse(ExceptionResponse {
            state_error: s,
            service_error: e,
            invocation_counter: (e == 6).then_some(ic)
        })),
        (any::<bool>(), any::<bool>(), 0u8..64, any::<u16>(), any::<u16>(), arb_bytes(300)).prop_map(
            |(l, s, w, b, a, d)| Apdu::GeneralBlockTransfer(GeneralBlockTransfer {
                last_block: l,
                streaming: s,
                window: w,
                block_number: b,
                block_number_ack: a,
                block_data: d
            })
        ),
        (any::<bool>(), arb_bytes(9), any::<u8>(), any::<u32>(), arb_bytes(200)).prop_map(|(d, st, sc, ic, ct)| {
            Apdu::GeneralCiphering(GeneralCiphering {
                dedicated: d,
                system_title: st,
                security_control: sc,
                invocation_counter: ic,
                ciphertext: ct,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_apdus_round_trip(a in prop_oneof![arb_xdlms(), arb_acse(), arb_initiate()]) {
        let bytes = a.encode();
        prop_assert_eq!(decode(&bytes).unwrap(), a);
    }

    #[test]
    fn random_bytes_never_panic(tag in prop_oneof![Just(0x60u8), Just(0x61), Just(0x62), Just(0xc0), Just(0xc1),
            Just(0xc3), Just(0xc4), Just(0xc5), Just(0xc7), Just(0x0f), Just(0xc2), Just(0xd8), Just(0xe0), Just(0xdb),
            Just(0x01), Just(0x08), Just(0x0e), any::<u8>()],
        rest in arb_bytes(64)) {
        let mut b = vec![tag];
        b.extend(rest);
        if let Ok(a) = decode(&b) {
            // whatever decodes re-encodes to something that decodes the same
            prop_assert_eq!(decode(&a.encode()).unwrap(), a);
        }
    }

    #[test]
    fn mutated_vectors_never_panic(i in 0usize..64, pos in any::<prop::sample::Index>(), byte in any::<u8>(),
                                   cut in any::<prop::sample::Index>()) {
        let v = vectors();
        let mut b = v[i % v.len()].2.clone();
        let p = pos.index(b.len());
        b[p] = byte;
        let _ = decode(&b);
        let c = cut.index(b.len());
        if let Ok(a) = decode(&b[..c]) {
            prop_assert_eq!(decode(&a.encode()).unwrap(), a);
        }
    }
}
