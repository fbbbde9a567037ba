-- PLACEHOLDER of branch i14-expiry, never to be merged: version 7 belongs
-- to another issue-14 branch, merged alongside. Migrations must run 1, 2,
-- 3… without gaps, so this branch needs something at 7 to test its 0008.
-- At merge, delete this file.
SELECT 1;
