-- wrk script: POST /api/v1/leaves with a bearer token, one leave per request (distinct dates so that
-- nothing is refused as a duplicate). Settings from the environment: LOAD_TOKEN, LOAD_EMPLOYEE_ID.
-- Usage: LOAD_TOKEN=... LOAD_EMPLOYEE_ID=... wrk -t2 -c16 -d20s -s scripts/leave-load.lua http://127.0.0.1:28002
local token = os.getenv("LOAD_TOKEN")
local employee = os.getenv("LOAD_EMPLOYEE_ID")
local counter = 0

request = function()
    counter = counter + 1
    local day = (counter % 28) + 1
    local body = string.format(
        '{"employee_id":"%s","leave_type":"annual","start_date":"2028-02-%02d","end_date":"2028-02-%02d","reason":"load %d"}',
        employee, day, day, counter)
    return wrk.format("POST", "/api/v1/leaves",
        { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

done = function(summary, latency)
    io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  requests %d  errors(non-2xx) %d  timeouts %d\n",
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, summary.requests, summary.errors.status, summary.errors.timeout))
end
