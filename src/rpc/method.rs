//! Registered methods, type-erased: params in as JSON, result out as JSON.

use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::RpcError;
use crate::future::LocalFuture;
use crate::request::Request;

/// The type-erased form of a registered method.
pub(super) trait Method {
    fn call(&self, req: &Rc<Request>, params: Value) -> LocalFuture<'static, MethodResult>;
}

pub(super) type MethodResult = Result<Value, RpcError>;

/// A method, given the HTTP request and its params (a method registered without the
/// request ignores it).
pub(super) struct WithRequest<F, P> {
    method: F,
    params: PhantomData<fn(P)>,
}

impl<F, P> WithRequest<F, P> {
    pub(super) fn new(method: F) -> Self {
        WithRequest {
            method,
            params: PhantomData,
        }
    }
}

impl<F, Fut, P, T, E> Method for WithRequest<F, P>
where
    F: Fn(Rc<Request>, P) -> Fut + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
    P: DeserializeOwned + 'static,
    T: Serialize,
    E: Into<RpcError>,
{
    fn call(&self, req: &Rc<Request>, params: Value) -> LocalFuture<'static, MethodResult> {
        match decode_params(params) {
            Ok(params) => encode_result((self.method)(Rc::clone(req), params)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

fn decode_params<P: DeserializeOwned>(params: Value) -> Result<P, RpcError> {
    let empty = match &params {
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    };
    match serde_json::from_value(params) {
        Ok(params) => Ok(params),
        // `[]` and `{}` say "no params" as plainly as leaving them out does.
        Err(e) if empty => {
            serde_json::from_value(Value::Null).map_err(|_| RpcError::invalid_params(e.to_string()))
        }
        Err(e) => Err(RpcError::invalid_params(e.to_string())),
    }
}

fn encode_result<Fut, T, E>(running: Fut) -> LocalFuture<'static, MethodResult>
where
    Fut: Future<Output = Result<T, E>> + 'static,
    T: Serialize,
    E: Into<RpcError>,
{
    Box::pin(async move {
        let result = running.await.map_err(Into::into)?;
        serde_json::to_value(result)
            .map_err(|e| RpcError::internal(format!("the result cannot be serialized: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_positionally_by_name_and_from_nothing() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Pair {
            a: i64,
            b: i64,
        }
        let both = Pair { a: 1, b: 2 };
        let decode = |v: Value| decode_params::<Pair>(v);
        assert_eq!(decode(serde_json::json!([1, 2])).ok(), Some(both));
        assert!(decode(serde_json::json!({"b": 2, "a": 1})).is_ok());
        let missing = decode(serde_json::json!({"a": 1})).expect_err("b missing");
        assert_eq!(missing.code(), RpcError::INVALID_PARAMS);
        assert_eq!(missing.data(), Some(&Value::from("missing field `b`")));
        assert!(decode(Value::Null).is_err());
        assert!(decode(serde_json::json!([1, 2, 3])).is_err());
        for nothing in [Value::Null, serde_json::json!([]), serde_json::json!({})] {
            assert!(decode_params::<()>(nothing).is_ok());
        }
        assert_eq!(
            decode_params::<Vec<i64>>(serde_json::json!([])).ok(),
            Some(vec![])
        );
        assert!(decode_params::<()>(serde_json::json!([1])).is_err());
    }
}
