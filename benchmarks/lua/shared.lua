-- What the benchmarks' wrk scripts share: wrk's threads, each numbered; the answers of each
-- thread counted by HTTP status, with the id of every comment acknowledged; done()'s report
-- of them, summed over the threads: "@status <code> <count>" per status, and the ids written
-- one per line to the file the environment variable LOAD_IDS_FILE names, when set; and the
-- shapes of comment the submitting scripts write.
--
-- A script finds it in its own folder:
--
--   package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
--   local shared = require("shared")
--
-- Each of wrk's Lua states (one per thread, one for setup and done) loads it anew; the
-- counts live in each thread's globals, where done() reads them with thread:get().

local shared = { threads = {} }

-- A few shapes of comment, so bodies differ in length and some have links and paragraphs
-- (the server renders its HTML at write time).
shared.fragments = {
  "Thanks for writing this up, it matches what we saw in production last spring.",
  "I disagree with the second point.\\n\\nThe numbers in the table do not support it.",
  "See https://example.org/notes/2025/benchmarks for a longer discussion of the method.",
  "Short and to the point. More articles like this, please!",
  "Could you share the raw data? I would like to check the median against my own runs.",
}

function shared.setup(thread)
  thread:set("thread_number", #shared.threads)
  table.insert(shared.threads, thread)
end

-- In each thread's init(): nothing counted yet.
function shared.start()
  statuses = {}
  ids = {}
end

-- One answer counted; when its status is one of `acknowledged` (a set), the id in its body
-- is kept.
function shared.count(status, body, acknowledged)
  statuses[status] = (statuses[status] or 0) + 1
  if acknowledged and acknowledged[status] then
    ids[#ids + 1] = string.match(body, '"id":%s*(%d+)')
  end
end

function shared.done()
  local status_total = {}
  local path = os.getenv("LOAD_IDS_FILE")
  local ids_file = path and assert(io.open(path, "w"))
  for _, thread in ipairs(shared.threads) do
    for status, count in pairs(thread:get("statuses")) do
      status_total[status] = (status_total[status] or 0) + count
    end
    if ids_file then
      for _, id in ipairs(thread:get("ids")) do
        ids_file:write(id, "\n")
      end
    end
  end
  if ids_file then
    ids_file:close()
  end
  for status, count in pairs(status_total) do
    io.write(string.format("@status %d %d\n", status, count))
  end
end

return shared
