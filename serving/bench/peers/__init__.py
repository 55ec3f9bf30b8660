"""``make bench-peers``: the local server measured side by side with the servers a user would pick instead
(KServe's Python ModelServer, MLServer) and with Python floors doing only the protocol + ORT work, on three
workloads, in one run with interleaved rounds. Issue 11's goals are judged from the rows.

Modules: ``workloads`` (models and requests), ``servers`` (start everything), ``wrk`` (HTTP load and its
parsing), ``h2load`` (gRPC load: the framed request, the log file's latencies), ``run`` (the interleaved sequence), ``results`` / ``goals`` / ``report`` / ``plot`` (output);
``runtimes/`` holds the standalone runtime scripts the peer venvs run (``requirements-*.txt`` pin them).
"""
