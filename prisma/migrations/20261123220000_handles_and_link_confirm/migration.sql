-- AlterTable
ALTER TABLE "LinkCode" ADD COLUMN "claimedByUserId" INTEGER;

-- CreateTable
CREATE TABLE "LinkLock" (
    "userId" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "lockedUntil" DATETIME
);

-- CreateTable
CREATE TABLE "RetiredHandle" (
    "handle" TEXT NOT NULL PRIMARY KEY,
    "retiredAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "reason" TEXT NOT NULL
);


-- Handles freed by "link" before they were retired: the audit log names each merged-away user.
INSERT INTO "RetiredHandle" ("handle", "reason")
SELECT DISTINCT "actor", 'merged by link' FROM "AuditEvent"
WHERE "action" = 'link' AND "result" = 'ok' AND "actor" NOT IN (SELECT "handle" FROM "User");
