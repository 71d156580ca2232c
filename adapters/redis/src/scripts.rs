//! The Lua scripts: what must happen in Redis as one step.

use std::sync::LazyLock;

use redis::Script;

/// Pushes a reply (ARGV[1]) onto an inbox's list (KEYS[1]) only while the inbox is open (its
/// marker, KEYS[2], exists): 1 if pushed, 0 if the inbox is gone. The list expires with the
/// marker (ARGV[2] ms), so replies to a client that died do not stay behind.
pub(crate) static REPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
        redis.call('LPUSH', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        ",
    )
});

/// Puts a delivered request back: if the entry ARGV[3] of stream KEYS[1] is still pending on
/// consumer ARGV[2] of group ARGV[1], adds a copy at the end (with `redelivered` set when
/// ARGV[4] is '1') and acknowledges and deletes the original. A copy rather than the entry
/// itself because a pending entry goes to another consumer only when claimed: a new entry wakes
/// the consumers blocked reading, at once. 1 if put back, 0 if no longer ours.
pub(crate) static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
        if #pending == 0 or pending[1][2] ~= ARGV[2] then return 0 end
        local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        if #entry == 0 then return 0 end
        local fields = entry[1][2]
        if ARGV[4] == '1' then
            local marked = false
            for i = 1, #fields, 2 do
                if fields[i] == 'redelivered' then marked = true end
            end
            if not marked then
                table.insert(fields, 'redelivered')
                table.insert(fields, '1')
            end
        end
        redis.call('XADD', KEYS[1], '*', unpack(fields))
        return 1
        ",
    )
});

/// Renews what consumer ARGV[2] of group ARGV[1] holds in stream KEYS[1]: its pending entries
/// idle for ARGV[3] ms or more (at most ARGV[4]) have their idle time reset (`JUSTID`: without counting a delivery), so that nobody
/// claims them while this consumer lives. With ARGV[5] '1' (the consumer is done), it is
/// removed from the group if it holds nothing. Returns how many it holds.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4], ARGV[2])
        if #pending > 0 then
            local ids = {}
            for i, entry in ipairs(pending) do ids[i] = entry[1] end
            table.insert(ids, 'JUSTID')
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))
        end
        local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
        if #held == 0 and ARGV[5] == '1' then
            redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
        end
        return #held
        ",
    )
});
