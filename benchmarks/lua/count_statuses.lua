-- wrk script for GET workloads: the request comes from wrk's command line (URL and -H
-- headers); this script only counts the answers by HTTP status, so that the harness can
-- check that a workload got what it asked for (for example 304s, not 200s).
--
-- done() prints one line per status, "@status <code> <count>", summed over wrk's threads
-- (shared.lua).

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local shared = require("shared")

setup = shared.setup
done = shared.done

function init(args)
  shared.start()
end

function response(status, headers, body)
  shared.count(status)
end
