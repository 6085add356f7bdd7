-- wrk script: each connection waits BENCH_PAUSE_MS between a response and its next
-- request, which caps the offered load (8 connections, 50 ms: at most 160 req/s).
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "50")

function delay()
   return pause
end
