//! `fibrpc procedures`: what the servers of a queue serve, one line per procedure.

use fibrpc_app::ReplyToMode;
use fibrpc_rpc::{ClientConfig, Procedure, Procedures};

use crate::args::ProceduresArgs;
use crate::call::connect_client;

pub async fn run(args: ProceduresArgs) -> Result<(), String> {
    let config = ClientConfig {
        timeout: args.timeout,
        ..ClientConfig::default()
    };
    let client = connect_client(&args.broker, ReplyToMode::Queue, config).await?;
    let procedures = client
        .call::<Procedures>(())
        .await
        .map_err(|error| format!("{}: {error}", Procedures::NAME))?;
    for procedure in procedures {
        let idempotent = if procedure.idempotent {
            "idempotent"
        } else {
            "not-idempotent"
        };
        println!(
            "{}  {idempotent}  {}",
            procedure.name,
            procedure.content_types.join(",")
        );
    }
    Ok(())
}
