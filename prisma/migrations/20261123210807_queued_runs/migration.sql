-- CreateTable
CREATE TABLE "QueuedRun" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "userId" INTEGER NOT NULL,
    "request" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    "doneAt" DATETIME,
    "result" TEXT
);

-- CreateIndex
CREATE INDEX "QueuedRun_state_createdAt_idx" ON "QueuedRun"("state", "createdAt");

