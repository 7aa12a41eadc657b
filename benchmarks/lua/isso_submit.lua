-- wrk script that submits new comments to Isso as its embed does (POST /new?uri=PAGE with a
-- JSON body: author, email, website, text, parent, title, notification): the peer of
-- submit.lua in benchmarks/peers. Every request carries a text, an author, an email and a
-- website of its own (the same shapes as submit.lua's) and goes to one of PAGES pages whose
-- URIs start with /load/RUN/, so the harness can find exactly this run's comments in Isso's
-- database afterwards. The page's title comes with each comment, as the embed sends its
-- data-title: without one, Isso would fetch the page from the site to read its title.
--
--   wrk -s isso_submit.lua http://127.0.0.1:PORT/new -- RUN PAGES
--
-- done() (shared.lua) prints "@status <code> <count>" per HTTP status, summed over wrk's threads, and,
-- when the environment variable LOAD_IDS_FILE is set, writes there the id of every comment
-- Isso acknowledged (202, held for moderation; 201, published), one per line.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local shared = require("shared")
local fragments = shared.fragments
local acknowledged = { [201] = true, [202] = true }

setup = shared.setup
done = shared.done

function init(args)
  run = args[1]
  pages = tonumber(args[2])
  requests_made = 0
  shared.start()
  request_headers = { ["Content-Type"] = "application/json" }
end

function request()
  requests_made = requests_made + 1
  local page = string.format("/load/%s/%d", run, (thread_number * 7919 + requests_made) % pages)
  local author = string.format("%d.%d", thread_number, requests_made)
  local body = string.format(
    '{"author":"Reader %s","email":"reader.%s@example.com",'
      .. '"website":"https://reader.example/%s","text":"Comment %s of run %s. %s",'
      .. '"parent":null,"title":"Load test page","notification":0}',
    author, author, author, author, run, fragments[requests_made % #fragments + 1]
  )
  -- The embed encodes the URI with encodeURIComponent: "/" becomes %2F.
  local path = wrk.path .. "?uri=" .. string.gsub(page, "/", "%%2F")
  return wrk.format("POST", path, request_headers, body)
end

function response(status, headers, body)
  shared.count(status, body, acknowledged)
end
