//! `fibrpc procedures`: what the servers of a queue serve, one line per procedure.

use fibrpc_app::ReplyToMode;
use fibrpc_rpc::{ClientConfig, Procedure, Procedures, RpcClient};

use crate::args::ProceduresArgs;

pub async fn run(args: ProceduresArgs) -> Result<(), String> {
    let connection = args.broker.connect(ReplyToMode::Exclusive).await?;
    let config = ClientConfig {
        queue: args.broker.queue.clone(),
        timeout: args.timeout,
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(connection.requests, config)
        .await
        .map_err(|error| error.to_string())?;
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
