//! `fibrpc call N...`: all calls in flight at once, results printed in the order asked.

use fibrpc_rpc::{ClientConfig, Codec, Fib, RpcClient};

use crate::args::CallArgs;

pub async fn run(args: CallArgs) -> Result<(), String> {
    let connection = args.broker.connect(args.reply_to).await?;
    let config = ClientConfig {
        queue: args.broker.queue.clone(),
        timeout: args.timeout,
        codec: if args.text {
            Codec::Text
        } else {
            Codec::Bincode
        },
        retry: fibrpc_app::retry_policy(args.retry),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(connection.requests, config)
        .await
        .map_err(|error| error.to_string())?;
    let calls: Vec<_> = args
        .numbers
        .iter()
        .map(|&n| {
            let client = client.clone();
            tokio::spawn(async move { (n, client.call::<Fib>(n).await) })
        })
        .collect();
    for call in calls {
        let (n, outcome) = call
            .await
            .map_err(|error| format!("a call task failed: {error}"))?;
        match outcome {
            Ok(value) => println!("{value}"),
            Err(error) => return Err(format!("fib({n}): {error}")),
        }
    }
    Ok(())
}
