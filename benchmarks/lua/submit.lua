-- wrk script that submits new comments to the public API (JSON POST to the URL given on
-- wrk's command line). Every request carries a body, an author and an email of its own and
-- goes to one of PAGES pages whose keys start with /load/RUN/, so the harness can find
-- exactly this run's comments in the database afterwards. With SENDER "widget", each request
-- also carries what the widget sends with a submission: an Idempotency-Key of its own and
-- fill_ms (how long the form was open: 5 s, a person's pace), and comes from a reader of its
-- own (an X-Forwarded-For address, for a server that trusts one proxy: many readers
-- commenting, as on a real site, each within the rate limits); with "api" (the default),
-- none of these, like an API client.
--
--   wrk -s submit.lua http://127.0.0.1:PORT/api/v1/sites/SITE/comments -- RUN PAGES [SENDER]
--
-- done() (shared.lua) prints "@status <code> <count>" per HTTP status, summed over wrk's threads,
-- and, when the environment variable LOAD_IDS_FILE is set, writes there the id of every
-- comment acknowledged with 201, one per line.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local shared = require("shared")
local fragments = shared.fragments
local acknowledged = { [201] = true }

setup = shared.setup
done = shared.done

function init(args)
  run = args[1]
  pages = tonumber(args[2])
  as_widget = args[3] == "widget"
  -- The page's URL is on the site's origin, https://SITE.example (load_data.py), or the
  -- submission is refused.
  page_origin = "https://" .. string.match(wrk.path, "/sites/([^/]+)/") .. ".example"
  -- Readers of this wrk run and thread: 100.N.0.0/16 (shared address space, which no
  -- blocklist entry of the benchmark covers), N drawn anew by each run.
  math.randomseed(os.time() * 1000 + thread_number * 7919 + os.clock() * 1e6)
  network = math.random(64, 127)
  requests_made = 0
  shared.start()
  request_headers = { ["Content-Type"] = "application/json" }
end

function request()
  requests_made = requests_made + 1
  local page = string.format("/load/%s/%d", run, (thread_number * 7919 + requests_made) % pages)
  local author = string.format("%d.%d", thread_number, requests_made)
  local proof = ""
  if as_widget then
    request_headers["Idempotency-Key"] = string.format("%s-%s", run, author)
    request_headers["X-Forwarded-For"] = string.format(
      "100.%d.%d.%d", network, math.floor(requests_made / 256) % 256, requests_made % 256
    )
    proof = ',"fill_ms":5000'
  end
  local body = string.format(
    '{"page":"%s","page_url":"%s%s","page_title":"Load test page",'
      .. '"body":"Comment %s of run %s. %s","author_name":"Reader %s",'
      .. '"author_email":"reader.%s@example.com","author_url":"https://reader.example/%s"%s}',
    page, page_origin, page, author, run, fragments[requests_made % #fragments + 1], author,
    author, author, proof
  )
  return wrk.format("POST", nil, request_headers, body)
end

function response(status, headers, body)
  shared.count(status, body, acknowledged)
end
