-- wrk script that POSTs one fixed JSON body, its first argument, to the URL given on wrk's
-- command line (for example Isso's counts of 20 pages: POST /count with a JSON array of
-- their URIs, as Isso's count.js sends it), and counts the answers by HTTP status, as
-- count_statuses.lua does for GET workloads.
--
--   wrk -s post_json.lua http://127.0.0.1:PORT/count -- '["/a","/b"]'
--
-- done() prints one line per status, "@status <code> <count>", summed over wrk's threads
-- (shared.lua).

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local shared = require("shared")

setup = shared.setup
done = shared.done

function init(args)
  shared.start()
  -- wrk builds the request once, after init, from these.
  wrk.method = "POST"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/json"
end

function response(status, headers, body)
  shared.count(status)
end
