"""``podium up``: the whole system on one machine.

Without ``REDIS_URL`` everything runs in this one process on the embedded bus: every agent's runtime
(A2A HTTP + inbox consumer + registry heartbeat) and the registry's HTTP service share one in-process
Redis. With ``REDIS_URL`` each agent and the registry run as their own ``podium`` processes, supervised
here: if one dies the others are stopped and the exit code says so.

No child outlives ``podium up``, however it ends: SIGTERM/SIGINT (honoured at every moment, a second one
cuts the grace period short) and its own errors stop them in ``finally``; each child runs in a process
group of its own, so what it leaves behind is swept up; and if ``podium up`` is killed outright, each
child gets SIGTERM from the kernel (``agents.lifeline``). A Redis that may evict keys is refused before
anything starts (see ``bus.eviction``).
"""
