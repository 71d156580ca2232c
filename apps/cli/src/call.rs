//! `fibrpc call N...`: all calls in flight at once, results printed in the order asked.
//! `fibrpc call --procedure NAME --json VALUE`: one call of any procedure, by name.

use fibrpc_fib::Fib;
use fibrpc_rpc::{codec, BatchLimits, CallError, ClientConfig, RpcClient};

use crate::args::CallArgs;

pub async fn run(args: CallArgs) -> Result<(), String> {
    if let (Some(procedure), Some(json)) = (&args.procedure, &args.json) {
        return call_by_name(&args, procedure, json).await;
    }
    let client = connect_client(
        &args.broker,
        args.reply_to,
        ClientConfig {
            timeout: args.timeout,
            codec: if args.text {
                fibrpc_fib::TEXT
            } else {
                codec::BINCODE
            },
            retry: fibrpc_app::retry_policy(args.retry),
            batch: args.batch.map(|n| BatchLimits::calls(n.into())),
            ..ClientConfig::default()
        },
    )
    .await?;
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
            // A tutorial server answers a bincode request in text: name the flag that fits.
            Err(error @ CallError::BadReply { .. }) if !args.text => {
                return Err(format!("fib({n}): {error} (the text wire is --text)"))
            }
            Err(error) => return Err(format!("fib({n}): {error}")),
        }
    }
    Ok(())
}

/// Calls `procedure` with the JSON `request`, knowing nothing of its types, and prints the
/// reply's JSON as it came. An error reply is the error: its kind and message, one line.
async fn call_by_name(args: &CallArgs, procedure: &str, request: &str) -> Result<(), String> {
    // Checked here: a typo is one clear line, not the server's invalid-request fault.
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(request) {
        return Err(format!("--json is not JSON: {error}"));
    }
    let config = ClientConfig {
        timeout: args.timeout,
        ..ClientConfig::default()
    };
    let client = connect_client(&args.broker, args.reply_to, config).await?;
    let reply = client
        .call_raw(
            procedure,
            codec::JSON_CONTENT_TYPE,
            request.as_bytes().to_vec(),
        )
        .await
        .map_err(|error| format!("{procedure}: {error}"))?;
    if let Some(mark) = reply.error {
        // Another language's server may write several lines: the error stays one.
        let message = mark.message.replace(['\n', '\r'], " ");
        return Err(format!("{procedure}: {}: {message}", mark.kind));
    }
    let content_type = reply.content_type.as_deref().unwrap_or("none");
    if !codec::JSON.reads(content_type) {
        return Err(format!(
            "{procedure}: a reply in {} to a JSON request: the server does not speak JSON",
            codec::truncate_for_display(content_type)
        ));
    }
    let text = String::from_utf8(reply.body)
        .map_err(|_| format!("{procedure}: the JSON reply is not UTF-8"))?;
    println!("{text}");
    Ok(())
}

/// A client of the queue the broker flags name, on a connection of their transport; `config`
/// gives the rest.
pub async fn connect_client(
    broker: &fibrpc_app::BrokerArgs,
    reply_to: fibrpc_app::ReplyToMode,
    config: ClientConfig,
) -> Result<RpcClient, String> {
    let connection = broker.connect(reply_to).await?;
    let config = ClientConfig {
        queue: broker.queue.clone(),
        ..config
    };
    RpcClient::connect(connection.requests, config)
        .await
        .map_err(|error| error.to_string())
}
