-- wrk script that sends, request by request, what the readers of many sites send (the memory
-- benchmark, benchmarks/memory.py): each request is drawn from MIX, and its page from the
-- pages of SITES, PAGES per site, a few much read and most seldom.
--
--   wrk -s readers.lua http://127.0.0.1:PORT/ -- RUN SITES PAGES SKEW MIX
--
--   RUN    tells this wrk run's submissions from every other's (their bodies and
--          Idempotency-Keys); a new one for each wrk run
--   SITES  site slugs, comma-separated; each has the origin https://SLUG.example
--          (benchmarks/load_data.py)
--   PAGES  pages per site, /article/0000 to /article/PAGES-1, numbered across the sites as the
--          load benchmark's queue database numbers them: page n is site n % #SITES, article
--          n // #SITES, and low numbers are the busiest threads
--   SKEW   page n is drawn as floor(N * r^SKEW), r uniform in [0, 1), N all pages: with 3 and
--          10,000 pages, a fifth of the draws fall on the 100 first pages, half on the 9,000
--          last ones
--   MIX    parts of each kind of request, e.g. thread=45,thread-304=20,fragment=10,counts=15,
--          widget=6,readyz=1,submit=3:
--            thread      GET /api/v1/sites/SITE/comments?sort=oldest&page=KEY, as the widget
--                        asks for a thread (with the site's Origin, as a browser sends it)
--            thread-304  the same with If-None-Match: a page this wrk thread read lately
--                        (an ETag of one of its 200 answers), as a reader coming back; before
--                        any is known, a plain thread read
--            fragment    GET /sites/SITE/thread.html?page=KEY, as a site includes the thread
--            counts      GET /api/v1/sites/SITE/counts?page=...: 20 pages of a site in a row,
--                        as an article list asks for them
--            widget      GET /widget.js
--            readyz      GET /readyz
--            submit      POST /api/v1/sites/SITE/comments as the widget sends it (JSON, the
--                        Origin, an Idempotency-Key of its own, fill_ms), a body, name and
--                        email of its own, on the drawn page
--
-- Every request carries an X-Request-ID naming its kind ("<kind>.<RUN>.<thread>.<number>", as a
-- proxy in front would send one), which the service echoes: each answer is counted by its
-- kind and status. done() prints "@status <code> <count>" per HTTP status (shared.lua) and,
-- when the environment variable READERS_COUNTS_FILE is set, writes there, summed over wrk's
-- threads, "sent <kind> <count>" (requests made; one still in flight when wrk stopped has no
-- answer) and "answered <kind> <status> <count>" lines ("unknown" for an answer without the
-- id). A thread-304 made before any ETag is known is a thread read, and counted as one.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local shared = require("shared")
local fragments = shared.fragments

-- The pages of one article list (the counts request), and how many recent reads a thread
-- keeps for its thread-304 requests.
local COUNTED_PAGES = 20
local REMEMBERED = 1000

setup = shared.setup

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text, "[^" .. separator .. "]+") do
    parts[#parts + 1] = part
  end
  return parts
end

local function origin_of(site)
  return "https://" .. site .. ".example"
end

-- The page key as a query value, as the widget's encodeURIComponent writes it.
local function encoded(key)
  return (string.gsub(key, "/", "%%2F"))
end

function init(args)
  run = args[1]
  sites = split(args[2], ",")
  pages_per_site = tonumber(args[3])
  skew = tonumber(args[4])
  all_pages = pages_per_site * #sites
  -- One entry per part: a uniform draw from it follows the mix.
  wheel = {}
  sent = {}
  for _, item in ipairs(split(args[5], ",")) do
    local kind, parts = string.match(item, "^([%w-]+)=(%d+)$")
    assert(kind, "not KIND=PARTS: " .. item)
    for _ = 1, tonumber(parts) do
      wheel[#wheel + 1] = kind
    end
    sent[kind] = 0
  end
  sent["thread"] = sent["thread"] or 0
  math.randomseed(os.time() * 1000 + thread_number * 7919 + os.clock() * 1e6)
  requests_made = 0
  -- Thread reads answered 200 lately: {path, origin, etag}, a ring of REMEMBERED.
  recent = {}
  recent_next = 1
  -- Answers by "<kind> <status>".
  answers = {}
  shared.start()
end

local function draw_page()
  local n = math.floor(all_pages * math.random() ^ skew)
  local site = sites[n % #sites + 1]
  return site, string.format("/article/%04d", math.floor(n / #sites))
end

local function thread_path(site, key)
  return "/api/v1/sites/" .. site .. "/comments?sort=oldest&page=" .. encoded(key)
end

-- Each request carries X-Request-ID "<kind>.<run>.<thread>.<number>", which the service echoes
-- (commentsvc/observability.py): response() tells each answer's kind by it.
local function made(kind, method, path, headers, body)
  sent[kind] = sent[kind] + 1
  headers = headers or {}
  headers["X-Request-ID"] = string.format("%s.%s.%d.%d", kind, run, thread_number, requests_made)
  return wrk.format(method, path, headers, body)
end

local function thread_read(site, key)
  return made("thread", "GET", thread_path(site, key), { Origin = origin_of(site) })
end

local function revisit()
  if #recent == 0 then
    return thread_read(draw_page())
  end
  local seen = recent[math.random(#recent)]
  return made("thread-304", "GET", seen[1], { Origin = seen[2], ["If-None-Match"] = seen[3] })
end

local function fragment()
  local site, key = draw_page()
  return made("fragment", "GET", "/sites/" .. site .. "/thread.html?page=" .. encoded(key))
end

local function counts()
  local site, key = draw_page()
  local first = math.min(tonumber(string.match(key, "%d+")), pages_per_site - COUNTED_PAGES)
  local query = {}
  for number = first, first + COUNTED_PAGES - 1 do
    query[#query + 1] = "page=" .. encoded(string.format("/article/%04d", number))
  end
  local path = "/api/v1/sites/" .. site .. "/counts?" .. table.concat(query, "&")
  return made("counts", "GET", path, { Origin = origin_of(site) })
end

local function plain(kind, path)
  return function()
    return made(kind, "GET", path)
  end
end

local function submit()
  local site, key = draw_page()
  local author = string.format("%d.%d", thread_number, requests_made)
  local origin = origin_of(site)
  local body = string.format(
    '{"page":"%s","page_url":"%s%s","page_title":"Article %s",'
      .. '"body":"Comment %s of run %s. %s","author_name":"Reader %s",'
      .. '"author_email":"reader.%s@example.com","fill_ms":5000}',
    key, origin, key, key, author, run, fragments[requests_made % #fragments + 1], author,
    author
  )
  local headers = {
    ["Content-Type"] = "application/json",
    Origin = origin,
    ["Idempotency-Key"] = string.format("%s-%s", run, author),
  }
  return made("submit", "POST", "/api/v1/sites/" .. site .. "/comments", headers, body)
end

local makers = {
  thread = function()
    return thread_read(draw_page())
  end,
  ["thread-304"] = revisit,
  fragment = fragment,
  counts = counts,
  widget = plain("widget", "/widget.js"),
  readyz = plain("readyz", "/readyz"),
  submit = submit,
}

function request()
  requests_made = requests_made + 1
  local kind = wheel[math.random(#wheel)]
  local make = makers[kind]
  assert(make, "unknown kind of request: " .. kind)
  return make()
end

-- A thread read's 200: remember its page, origin and ETag for the thread-304 requests. Its
-- body names the page; the origin it was asked from comes back as the CORS header.
local function remember(headers, body)
  local etag = headers["ETag"] or headers["Etag"] or headers["etag"]
  local origin = headers["Access-Control-Allow-Origin"]
  if not etag or not origin or string.byte(body, 1) ~= 123 then -- 123: "{"
    return
  end
  local at = string.find(body, '"page":', 1, true)
  if not at then
    return
  end
  local key = string.match(body, '^%s*"([^"]*)"', at + 7)
  local site = string.match(origin, "^https://(.+)%.example$")
  if key and site then
    recent[recent_next] = { thread_path(site, key), origin, etag }
    recent_next = recent_next % REMEMBERED + 1
  end
end

function response(status, headers, body)
  shared.count(status)
  local kind = string.match(headers["X-Request-ID"] or "", "^([%w-]+)%.") or "unknown"
  local answer = kind .. " " .. status
  answers[answer] = (answers[answer] or 0) + 1
  if kind == "thread" and status == 200 then
    remember(headers, body)
  end
end

function done(summary, latency, requests)
  shared.done()
  local path = os.getenv("READERS_COUNTS_FILE")
  if not path then
    return
  end
  local totals = {}
  for _, thread in ipairs(shared.threads) do
    for kind, count in pairs(thread:get("sent")) do
      totals["sent " .. kind] = (totals["sent " .. kind] or 0) + count
    end
    for answer, count in pairs(thread:get("answers")) do
      totals["answered " .. answer] = (totals["answered " .. answer] or 0) + count
    end
  end
  local file = assert(io.open(path, "w"))
  for line, count in pairs(totals) do
    file:write(line, " ", count, "\n")
  end
  file:close()
end
