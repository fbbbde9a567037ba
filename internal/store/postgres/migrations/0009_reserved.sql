-- PLACEHOLDER of branch i14-expiry, never to be merged: version 9 belongs
-- to another issue-14 branch, merged alongside. Migrations must run 1, 2,
-- 3… without gaps, so this branch needs something at 9 to test its 0010.
-- At merge, delete this file and its line in testdata/migrations.sum.
SELECT 1;
