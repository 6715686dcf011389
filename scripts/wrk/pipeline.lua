-- HTTP/1.1 pipelining for wrk: every write carries DEPTH requests back to
-- back, so the server sees them in one read and can answer them in one write.
--
--   wrk -t1 -c256 -d15s -s scripts/wrk/pipeline.lua http://127.0.0.1:8080/plaintext -- 16
--
-- The optional argument after `--` is the depth (default 16). wrk counts
-- responses, so "requests" in its report are individual requests, not batches.

local batch

init = function(args)
  local depth = tonumber(args[1]) or 16
  local one = wrk.format() -- GET of the URL's path, with wrk's default headers
  local copies = {}
  for i = 1, depth do
    copies[i] = one
  end
  batch = table.concat(copies)
end

request = function()
  return batch
end
