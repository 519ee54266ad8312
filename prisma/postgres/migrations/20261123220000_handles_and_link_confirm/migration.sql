-- AlterTable
ALTER TABLE "LinkCode" ADD COLUMN     "claimedByUserId" INTEGER;

-- CreateTable
CREATE TABLE "LinkLock" (
    "userId" INTEGER NOT NULL,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "lockedUntil" TIMESTAMP(3),

    CONSTRAINT "LinkLock_pkey" PRIMARY KEY ("userId")
);

-- CreateTable
CREATE TABLE "RetiredHandle" (
    "handle" TEXT NOT NULL,
    "retiredAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "reason" TEXT NOT NULL,

    CONSTRAINT "RetiredHandle_pkey" PRIMARY KEY ("handle")
);


-- Handles freed by "link" before they were retired: the audit log names each merged-away user.
INSERT INTO "RetiredHandle" ("handle", "reason")
SELECT DISTINCT "actor", 'merged by link' FROM "AuditEvent"
WHERE "action" = 'link' AND "result" = 'ok' AND "actor" NOT IN (SELECT "handle" FROM "User");
