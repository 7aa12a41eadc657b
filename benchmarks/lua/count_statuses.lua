-- wrk script for GET workloads: the request comes from wrk's command line (URL and -H
-- headers); this script only counts the answers by HTTP status, so that the harness can
-- check that a workload got what it asked for (for example 304s, not 200s).
--
-- done() prints one line per status, "@status <code> <count>", summed over wrk's threads.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("@status %d %d\n", status, count))
  end
end
