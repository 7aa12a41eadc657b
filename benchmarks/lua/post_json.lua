-- wrk script that POSTs one fixed JSON body, its first argument, to the URL given on wrk's
-- command line (for example Isso's counts of 20 pages: POST /count with a JSON array of
-- their URIs, as Isso's count.js sends it), and counts the answers by HTTP status, as
-- count_statuses.lua does for GET workloads.
--
--   wrk -s post_json.lua http://127.0.0.1:PORT/count -- '["/a","/b"]'
--
-- done() prints one line per status, "@status <code> <count>", summed over wrk's threads.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  -- wrk builds the request once, after init, from these.
  wrk.method = "POST"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/json"
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
