//! `timberline_panic()`: a function that panics, registered in debug builds only, so tests can
//! prove a panic while a query runs is contained to its connection.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Panic {
    signature: Signature,
}

/// The failpoint function.
pub fn panic_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Panic {
        signature: Signature::exact(vec![], Volatility::Volatile),
    })
}

impl ScalarUDFImpl for Panic {
    fn name(&self) -> &str {
        "timberline_panic"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    #[allow(clippy::panic)]
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        panic!("timberline_panic() was called")
    }
}
