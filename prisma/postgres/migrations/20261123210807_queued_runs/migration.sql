-- CreateTable
CREATE TABLE "QueuedRun" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "request" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "doneAt" TIMESTAMP(3),
    "result" TEXT,

    CONSTRAINT "QueuedRun_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "QueuedRun_state_createdAt_idx" ON "QueuedRun"("state", "createdAt");

