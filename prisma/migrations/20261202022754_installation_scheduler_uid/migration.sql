-- AlterTable
ALTER TABLE "User" ADD COLUMN "uid" INTEGER;

-- CreateTable
CREATE TABLE "Installation" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "instanceId" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "SchedulerLease" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "holder" TEXT NOT NULL,
    "expiresAt" DATETIME NOT NULL,
    "heartbeatAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "Installation_instanceId_key" ON "Installation"("instanceId");

-- CreateIndex
CREATE UNIQUE INDEX "User_uid_key" ON "User"("uid");


-- This installation's id, made once, here.
INSERT INTO "Installation" ("id", "instanceId") VALUES (1, lower(hex(randomblob(16))));
